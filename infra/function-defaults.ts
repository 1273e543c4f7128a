// CrsFunction: every Lambda of the pipeline with the same defaults. Node.js 22 on arm64, an ESM bundle built by
// the local esbuild (infra/bundling.ts: minified, split, source maps), its own role with no managed policy (grants add what it needs), its
// own log group (retention, encrypted with the stack's key), reserved concurrency, Powertools settings.
import { AssetHashType, DockerImage, type Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '#adapters/aws/telemetry.ts';
import { FUNCTION_ENTRIES, REPO_ROOT, bundleFunction, type FunctionName } from './bundling.ts';

export interface CrsFunctionProps {
  name: FunctionName;
  description: string;
  key: kms.IKey;
  timeout: Duration;
  memorySize?: number;
  reservedConcurrency: number;
  logRetention: logs.RetentionDays;
  environment?: Record<string, string>;
  /** The functions' log level (Powertools); Lambda's own platform events are kept at INFO and DEBUG only. */
  logLevel?: LogLevel;
}

export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * WARN by default: the functions log warnings and errors (with the ids they concern), not a line per message or per
 * invocation (Lambda's START and REPORT events included), which at a message a minute per patient was most of the
 * log volume and its cost (docs/cost.md). `-c logLevel=INFO` brings both back. Application logs are filtered by
 * Powertools, not by Lambda: Lambda's filter would drop the EMF metric lines, which carry no level.
 */
const DEFAULT_LOG_LEVEL: LogLevel = 'WARN';

/**
 * A role whose grants land in a customer managed policy of its own instead of an inline policy (HIPAA Security
 * IAMNoInlinePolicy). The policy is a child of the role, so whatever depends on the role (the function, its event
 * source mappings) waits for its permissions too.
 */
export class ManagedPolicyRole extends iam.Role {
  readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: iam.RoleProps) {
    super(scope, id, props);
    this.policy = new iam.ManagedPolicy(this, 'Policy', { roles: [this], description: props.description });
  }

  override addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    this.policy.addStatements(statement);
    return { statementAdded: true, policyDependable: this.policy };
  }
}

/** Lambda's quota on a function's environment: all its variables, measured as their JSON (names, values, quotes). */
const LAMBDA_ENVIRONMENT_BYTES = 4096;
/**
 * What a value known only at deploy (a table's name, a queue's URL, a topic's or secret's ARN, the API's URL) is
 * counted as: more than any of them takes (the longest, a queue's URL or the secret's ARN, about 105 characters in
 * the region with the longest name: CloudFormation names them from the stack's name and their logical ids).
 */
const DEPLOY_TIME_VALUE_BYTES = 128;

/** The size of a function's environment as Lambda measures it, each value known only at deploy at its most. */
function environmentBytes(fn: lambda.Function): number {
  const cfn = fn.node.defaultChild as lambda.CfnFunction;
  const resolved = Stack.of(fn).resolve(cfn.environment) as { variables?: Record<string, unknown> } | undefined;
  const placeholder = 'x'.repeat(DEPLOY_TIME_VALUE_BYTES);
  const variables = Object.entries(resolved?.variables ?? {}).map(([k, v]) => [
    k,
    typeof v === 'string' ? v : placeholder,
  ]);
  return Buffer.byteLength(JSON.stringify(Object.fromEntries(variables)), 'utf8');
}

/**
 * Refuses functions whose variables would take more than Lambda's 4 KB: the stack synthesized, and the deploy failed
 * (Lambda refuses the function). Only the configuration (`gradingConfig`, CRS_CONFIG) can make them that large: a
 * site's protocol texts in `actions` take that much soon.
 */
export function checkEnvironmentsFit(functions: CrsFunction[], gradingConfigJson: string | undefined): void {
  const sized = functions.map((f) => ({ f, bytes: environmentBytes(f.fn) })).sort((a, b) => b.bytes - a.bytes);
  const { f, bytes } = sized[0]!;
  if (bytes <= LAMBDA_ENVIRONMENT_BYTES) return;
  throw new Error(
    gradingConfigJson === undefined
      ? `the ${f.name} function's variables would take ${bytes} bytes, over the ${LAMBDA_ENVIRONMENT_BYTES} (4 KB) Lambda allows: the deploy would fail`
      : `gradingConfig: ${Buffer.byteLength(gradingConfigJson, 'utf8')} bytes of JSON, which the ${f.name} function gets as CRS_CONFIG: its variables would take up to ${bytes} bytes, over the ${LAMBDA_ENVIRONMENT_BYTES} (4 KB) Lambda allows a function, and the deploy would fail. Make the overrides about ${bytes - LAMBDA_ENVIRONMENT_BYTES} bytes shorter (give only what differs from the defaults; the action texts are the usual cause: keep them to the steps, and the protocol itself where the teams read it)`,
  );
}

export class CrsFunction extends Construct {
  readonly fn: lambda.Function;
  readonly role: ManagedPolicyRole;
  readonly logGroup: logs.LogGroup;
  readonly name: FunctionName;

  constructor(scope: Construct, id: string, props: CrsFunctionProps) {
    super(scope, id);
    this.name = props.name;
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      encryptionKey: props.key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.role = new ManagedPolicyRole(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `crs ${props.name} function: only what its grants add`,
    });
    this.logGroup.grantWrite(this.role);

    this.fn = new lambda.Function(this, 'Function', {
      // Built by esbuild in this process, with the options the benchmark measures (NodejsFunction's command line
      // cannot split code). The asset is named by its output, as NodejsFunction's is; never Docker.
      code: lambda.Code.fromAsset(REPO_ROOT, {
        assetHashType: AssetHashType.OUTPUT,
        bundling: {
          image: DockerImage.fromRegistry('unused'),
          // CDK reuses one bundle for assets of the same source and bundling options, and the local function is not
          // an option it compares: the entry, named here, tells the five functions' bundles apart.
          environment: { CRS_FUNCTION_ENTRY: FUNCTION_ENTRIES[props.name] },
          local: {
            tryBundle: (outputDir) => {
              bundleFunction(props.name, outputDir);
              return true;
            },
          },
        },
      }),
      handler: 'index.handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      reservedConcurrentExecutions: props.reservedConcurrency,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      systemLogLevelV2:
        (props.logLevel ?? DEFAULT_LOG_LEVEL) === 'DEBUG'
          ? lambda.SystemLogLevel.DEBUG
          : (props.logLevel ?? DEFAULT_LOG_LEVEL) === 'INFO'
            ? lambda.SystemLogLevel.INFO
            : lambda.SystemLogLevel.WARN,
      environmentEncryption: props.key,
      environment: {
        POWERTOOLS_SERVICE_NAME: props.name,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? DEFAULT_LOG_LEVEL,
        ...props.environment,
      },
    });
  }
}
