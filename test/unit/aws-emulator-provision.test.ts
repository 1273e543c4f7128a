// What `crs serve --backend aws` provisions (shared/hosts/aws-emulator/provision.ts), read from the synthesized
// stack itself and checked against it, on fake AWS clients: the queues with the stack's attributes (the test's
// visibility timeout on the grade queue only, and put on a queue an earlier run made), the tables with their
// indexes, streams and TTL, the event source mappings as the stack sets them, each team's subscription with its
// filter policy and dead-letter queue, the functions' timeouts and variables, the schedule, and the
// acknowledge-link secret kept across a restart.
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, DescribeSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, type SNSClient, SubscribeCommand, type SubscribeCommandInput } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { provision, type AwsClients } from '#hosts/aws-emulator/provision.ts';
import { LOCAL_PAGING, type Synthesized } from '#hosts/aws-emulator/template.ts';
import { synthesizedStack } from '#test/support/aws-serve.ts';

const ARN = 'arn:aws:sqs:us-east-1:000000000000';

/** An endpoint that keeps what was created, and answers as AWS does when it is created again. */
class FakeAws {
  readonly queues = new Map<string, Record<string, string>>();
  readonly queueUpdates: { name: string; attributes: Record<string, string> }[] = [];
  readonly tables = new Map<string, CreateTableCommandInput>();
  readonly ttl = new Map<string, string>();
  readonly subscriptions: SubscribeCommandInput[] = [];
  readonly secrets = new Map<string, string>();

  private client<T>(handle: (command: any) => unknown): T {
    return { send: async (command: unknown) => handle(command), destroy: () => undefined } as unknown as T;
  }

  readonly clients: AwsClients = {
    sqs: this.client<SQSClient>((c) => {
      const name = (url: string) => url.slice('http://sqs/'.length);
      if (c instanceof CreateQueueCommand) {
        const { QueueName, Attributes } = c.input;
        if (this.queues.has(QueueName!)) throw Object.assign(new Error('exists'), { name: 'QueueAlreadyExists' });
        this.queues.set(QueueName!, { ...Attributes });
        return { QueueUrl: `http://sqs/${QueueName}` };
      }
      if (c instanceof GetQueueUrlCommand) return { QueueUrl: `http://sqs/${c.input.QueueName}` };
      if (c instanceof SetQueueAttributesCommand) {
        this.queueUpdates.push({ name: name(c.input.QueueUrl!), attributes: { ...c.input.Attributes } });
        return {};
      }
      if (c instanceof GetQueueAttributesCommand)
        return { Attributes: { QueueArn: `${ARN}:${name(c.input.QueueUrl!)}` } };
      throw new Error(`unexpected ${c.constructor.name}`);
    }),
    dynamodb: this.client<DynamoDBClient>((c) => {
      if (c instanceof CreateTableCommand) {
        if (this.tables.has(c.input.TableName!))
          throw Object.assign(new Error('in use'), { name: 'ResourceInUseException' });
        this.tables.set(c.input.TableName!, c.input);
        return {};
      }
      if (c instanceof DescribeTableCommand) {
        const t = this.tables.get(c.input.TableName!)!;
        const arn = `arn:aws:dynamodb:us-east-1:000000000000:table/${t.TableName}`;
        return {
          Table: {
            TableName: t.TableName,
            TableStatus: 'ACTIVE',
            TableArn: arn,
            ...(t.StreamSpecification ? { LatestStreamArn: `${arn}/stream/label` } : {}),
          },
        };
      }
      if (c instanceof UpdateTimeToLiveCommand) {
        this.ttl.set(c.input.TableName!, c.input.TimeToLiveSpecification!.AttributeName!);
        return {};
      }
      throw new Error(`unexpected ${c.constructor.name}`);
    }),
    sns: this.client<SNSClient>((c) => {
      if (c instanceof CreateTopicCommand) return { TopicArn: `arn:aws:sns:us-east-1:000000000000:${c.input.Name}` };
      if (c instanceof SubscribeCommand) {
        this.subscriptions.push(c.input);
        return { SubscriptionArn: `${c.input.TopicArn}:sub-${this.subscriptions.length}` };
      }
      throw new Error(`unexpected ${c.constructor.name}`);
    }),
    secrets: this.client<SecretsManagerClient>((c) => {
      if (c instanceof CreateSecretCommand) {
        if (this.secrets.has(c.input.Name!))
          throw Object.assign(new Error('exists'), { name: 'ResourceExistsException' });
        this.secrets.set(c.input.Name!, c.input.SecretString!);
        return { ARN: `arn:secret:${c.input.Name}-${this.secrets.size}` };
      }
      if (c instanceof DescribeSecretCommand) return { ARN: `arn:secret:${c.input.SecretId}-1` };
      throw new Error(`unexpected ${c.constructor.name}`);
    }),
    cloudwatch: this.client<CloudWatchClient>(() => ({})),
  };
}

let synth: Synthesized;
beforeAll(async () => {
  synth = await synthesizedStack({ paging: LOCAL_PAGING });
}, 120_000);

const resources = () => Object.entries(synth.template.Resources);
const ofType = (type: string) => resources().filter(([, r]) => r.Type === type);
const props = (id: string) => synth.template.Resources[id]!.Properties as Record<string, any>;
const ACK_BASE = 'http://127.0.0.1:9999/ack/';

describe('what the local host provisions, pinned by a mutation run', () => {
  it("creates the stack's queues, tables, mappings, subscriptions and functions as the stack has them", async () => {
    const aws = new FakeAws();
    const p = await provision(synth, aws.clients, {
      prefix: 'crs-t',
      visibilityTimeoutSeconds: 2,
      hostVariables: { CRS_ACK_BASE_URL: ACK_BASE },
    });

    // Queues: the stack's attributes; the shortened visibility timeout on the grade function's queue only.
    const queueName = (id: string) => `crs-t-${id}${String(props(id).FifoQueue) === 'true' ? '.fifo' : ''}`;
    const redriven: string[] = [];
    for (const [id, r] of ofType('AWS::SQS::Queue')) {
      const attributes = aws.queues.get(queueName(id))!;
      expect(attributes, id).toBeDefined();
      const expected =
        id === p.gradeSource.queue.logicalId ? '2' : (r.Properties?.VisibilityTimeout ?? undefined)?.toString();
      expect(attributes.VisibilityTimeout, id).toBe(expected);
      // The stack's count and dead-letter queue, not just some policy: a count of 1000 once passed here.
      const redrive = r.Properties?.RedrivePolicy as { deadLetterTargetArn: any; maxReceiveCount: number } | undefined;
      if (redrive) {
        redriven.push(id);
        expect(JSON.parse(attributes.RedrivePolicy!), id).toEqual({
          deadLetterTargetArn: `${ARN}:${queueName(redrive.deadLetterTargetArn['Fn::GetAtt'][0])}`,
          maxReceiveCount: redrive.maxReceiveCount,
        });
      }
    }
    // The grade and timer queues have one each, so the check above ran.
    expect(redriven.sort()).toEqual([p.gradeSource.queue.logicalId, p.escalateSource.queue.logicalId].sort());

    // Tables: keys, indexes, the stream where the stack has one, TTL where it sets one.
    for (const [id, r] of ofType('AWS::DynamoDB::Table')) {
      const t = aws.tables.get(`crs-t-${id}`)!;
      const q = r.Properties as Record<string, any>;
      expect(t.KeySchema, id).toEqual(q.KeySchema);
      expect(t.GlobalSecondaryIndexes ?? [], id).toEqual(q.GlobalSecondaryIndexes ?? []);
      expect(t.StreamSpecification?.StreamViewType, id).toBe(q.StreamSpecification?.StreamViewType);
      expect(aws.ttl.get(`crs-t-${id}`), id).toBe(
        q.TimeToLiveSpecification?.Enabled ? q.TimeToLiveSpecification.AttributeName : undefined,
      );
    }

    // The notifier's stream mapping, and the SQS mappings, as the stack sets them.
    const [, notifyMapping] = ofType('AWS::Lambda::EventSourceMapping').find(([, r]) =>
      JSON.stringify(r.Properties?.EventSourceArn).includes('StreamArn'),
    )!;
    const n = notifyMapping.Properties as Record<string, any>;
    expect(p.notifySource).toMatchObject({
      batchSize: n.BatchSize,
      bisectOnError: true,
      reportBatchItemFailures: true,
      maxRetryAttempts: n.MaximumRetryAttempts,
      maxRecordAgeSeconds: n.MaximumRecordAgeInSeconds,
      startingPosition: 'TRIM_HORIZON',
      filters: n.FilterCriteria.Filters.map((f: { Pattern: string }) => JSON.parse(f.Pattern)),
    });
    expect(p.notifySource.maxRetryAttempts).toBeGreaterThan(0);
    expect(p.notifySource.maxRecordAgeSeconds).toBeGreaterThan(0);
    expect(p.notifySource.onFailure?.logicalId).toBe(n.DestinationConfig.OnFailure.Destination['Fn::GetAtt'][0]);
    for (const source of [p.gradeSource, p.escalateSource]) {
      const [, mapping] = ofType('AWS::Lambda::EventSourceMapping').find(
        ([, r]) => (r.Properties?.EventSourceArn as any)?.['Fn::GetAtt']?.[0] === source.queue.logicalId,
      )!;
      const m = mapping.Properties as Record<string, any>;
      expect(source.maxConcurrency, source.role).toBe(m.ScalingConfig.MaximumConcurrency);
      expect(source.batchSize).toBe(m.BatchSize);
    }

    // Functions: the stack's timeout and reserved concurrency; the acknowledge links' base is the local front's.
    for (const [role, id] of Object.entries(synth.functions)) {
      const f = p.functions[role as keyof typeof synth.functions];
      expect(f.timeoutSeconds, role).toBe(props(id).Timeout);
      expect(f.reservedConcurrency, role).toBe(props(id).ReservedConcurrentExecutions);
    }
    expect(p.functions.notify.environment.CRS_ACK_BASE_URL).toBe(ACK_BASE);
    // What every function is given alike reaches the one process (the stack's log level: no line per message);
    // what differs between them (the Powertools service name) cannot, and does not.
    for (const [role, id] of Object.entries(synth.functions)) {
      const env = p.functions[role as keyof typeof synth.functions].environment;
      expect(env.POWERTOOLS_LOG_LEVEL, role).toBe(props(id).Environment.Variables.POWERTOOLS_LOG_LEVEL);
      expect(env.POWERTOOLS_LOG_LEVEL, role).toBe('WARN');
      expect(env.POWERTOOLS_SERVICE_NAME, role).toBeUndefined();
    }

    // The schedule, at the stack's rate (a minute).
    expect(p.schedules).toEqual([{ role: 'escalate', everySeconds: 60 }]);

    // Each team's queue: subscribed with the team's filter policy, as JSON envelopes, with the stack's DLQ.
    expect(aws.subscriptions).toHaveLength(p.teamQueues.length);
    expect(p.teamQueues.length).toBeGreaterThan(0);
    for (const s of aws.subscriptions) {
      const team = p.teamQueues.find((t) => t.queue.arn === s.Endpoint)!;
      expect(JSON.parse(s.Attributes!.FilterPolicy!)).toEqual({ teams: [team.team] });
      expect(s.Attributes!.RawMessageDelivery).toBe('false');
      expect(JSON.parse(s.Attributes!.RedrivePolicy!).deadLetterTargetArn).toMatch(/^arn:aws:sqs:/);
      expect(aws.queues.get(team.queue.name)!.VisibilityTimeout).toBe('5');
    }
  });

  it("gives the emulator's ingest function the HL7 and FHIR settings the run was started with (the stack's context)", async () => {
    const set = await synthesizedStack({
      paging: LOCAL_PAGING,
      hl7Zone: '+01:00',
      hl7PatientAuthority: 'HOSP',
      fhirPatientSystem: 'urn:oid:1.2.3',
      fhirDrugCodes: [{ system: 'urn:oid:1.2.3', code: '40012', drug: 'norepinephrine' }],
    });
    const p = await provision(set, new FakeAws().clients, {
      prefix: 'crs-t',
      hostVariables: { CRS_ACK_BASE_URL: ACK_BASE },
    });
    expect(p.functions.ingest.environment).toMatchObject({
      CRS_HL7_ZONE: '+01:00',
      CRS_HL7_PATIENT_AUTHORITY: 'HOSP',
      CRS_FHIR_PATIENT_SYSTEM: 'urn:oid:1.2.3',
      CRS_FHIR_DRUG_CODES_FILE: 'crs-fhir-drug-codes.json',
    });
    // Beside the handler, where the host puts the files the stack ships (LAMBDA_TASK_ROOT): the ingest function's only.
    expect(JSON.parse(p.functions.ingest.files['crs-fhir-drug-codes.json']!)).toEqual([
      { system: 'urn:oid:1.2.3', code: '40012', drug: 'norepinephrine' },
    ]);
    expect(p.functions.grade.files).not.toHaveProperty('crs-fhir-drug-codes.json');
    const unset = await provision(synth, new FakeAws().clients, {
      prefix: 'crs-t',
      hostVariables: { CRS_ACK_BASE_URL: ACK_BASE },
    });
    expect(unset.functions.ingest.environment).not.toHaveProperty('CRS_HL7_PATIENT_AUTHORITY');
    expect(unset.functions.ingest.environment).not.toHaveProperty('CRS_HL7_ZONE');
    expect(unset.functions.ingest.environment).not.toHaveProperty('CRS_FHIR_PATIENT_SYSTEM');
    expect(unset.functions.ingest.environment).not.toHaveProperty('CRS_FHIR_DRUG_CODES_FILE');
  }, 120_000);

  it('on a second start, sets the new visibility timeout on the queue an earlier run made, and keeps the secret', async () => {
    const aws = new FakeAws();
    const first = await provision(synth, aws.clients, {
      prefix: 'crs-t',
      visibilityTimeoutSeconds: 2,
      hostVariables: { CRS_ACK_BASE_URL: ACK_BASE },
    });
    const secretValue = [...aws.secrets.values()];
    const again = await provision(synth, aws.clients, {
      prefix: 'crs-t',
      visibilityTimeoutSeconds: 7,
      hostVariables: { CRS_ACK_BASE_URL: ACK_BASE },
    });
    const update = aws.queueUpdates.find((u) => u.name === again.gradeSource.queue.name)!;
    expect(update.attributes.VisibilityTimeout).toBe('7');
    // FifoQueue cannot be set on a queue that exists.
    expect(update.attributes.FifoQueue).toBeUndefined();
    expect([...aws.secrets.values()]).toEqual(secretValue);
    expect(again.secrets.map((s) => s.arn)).toEqual(first.secrets.map((s) => s.arn));
  });
});
