// The metrics Lambda itself publishes for every function (namespace AWS/Lambda: Invocations and Errors by
// FunctionName), published by the local host for the handlers it runs, so that what reads them in AWS (the stack's
// alarms, `crs doctor`'s "last ingest" and "last escalate run") reads the same on an emulator. Counted per
// function and put every few seconds, as CloudWatch receives Lambda's own one-minute sums. Only on an emulator:
// AWS refuses a namespace starting with "AWS/" from anyone but AWS.
import { PutMetricDataCommand, type CloudWatchClient, type MetricDatum } from '@aws-sdk/client-cloudwatch';

const LAMBDA_NAMESPACE = 'AWS/Lambda';

export class PlatformMetrics {
  private counts = new Map<string, { invocations: number; errors: number }>();
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly cloudwatch: CloudWatchClient,
    private readonly log: (line: string) => void,
    private readonly everyMs = 5000,
  ) {}

  /** One invocation of the function named `functionName` ended (failed: it threw or timed out). */
  record(functionName: string, failed: boolean): void {
    const c = this.counts.get(functionName) ?? { invocations: 0, errors: 0 };
    c.invocations++;
    if (failed) c.errors++;
    this.counts.set(functionName, c);
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  flush(): Promise<void> {
    if (this.counts.size === 0) return this.flushing;
    const counts = this.counts;
    this.counts = new Map();
    const at = new Date();
    const data: MetricDatum[] = [...counts].flatMap(([name, c]) => {
      const dimensions = [{ Name: 'FunctionName', Value: name }];
      return [
        { MetricName: 'Invocations', Dimensions: dimensions, Value: c.invocations, Unit: 'Count', Timestamp: at },
        { MetricName: 'Errors', Dimensions: dimensions, Value: c.errors, Unit: 'Count', Timestamp: at },
      ];
    });
    this.flushing = this.flushing.then(async () => {
      try {
        await this.cloudwatch.send(new PutMetricDataCommand({ Namespace: LAMBDA_NAMESPACE, MetricData: data }));
      } catch (err) {
        this.log(
          `crs serve: the functions' invocation metrics could not be put (${(err as Error).name}); later ones will be`,
        );
      }
    });
    return this.flushing;
  }
}
