// CrsFunction: every Lambda of the pipeline with the same defaults. Node.js 22 on arm64, an ESM bundle built by
// the local esbuild (infra/bundling.ts: minified, split, source maps), its own role with no managed policy (grants add what it needs), its
// own log group (retention, encrypted with the stack's key), reserved concurrency, Powertools settings.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AssetHashType, DockerImage, type Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENV } from '#adapters/aws/env.ts';
import { METRICS_NAMESPACE } from '#adapters/aws/telemetry.ts';
import { thisRelease } from '#app/release.ts';
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
  /**
   * Files shipped in the function's code beside its handler (name: content), read at cold start: what is too large
   * for Lambda's 4 KB of variables a function (the site's configuration, CRS_CONFIG_FILE).
   */
  files?: Record<string, string>;
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

export class CrsFunction extends Construct {
  readonly fn: lambda.Function;
  readonly role: ManagedPolicyRole;
  readonly logGroup: logs.LogGroup;
  /** The files shipped beside the handler (CrsFunctionProps.files). */
  readonly files: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: CrsFunctionProps) {
    super(scope, id);
    this.files = props.files ?? {};
    const files = Object.entries(this.files);
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
          // an option it compares: the entry, named here, tells the five functions' bundles apart, and the files'
          // digest their contents.
          environment: {
            CRS_FUNCTION_ENTRY: FUNCTION_ENTRIES[props.name],
            ...(files.length > 0 ? { CRS_FUNCTION_FILES: sha256(JSON.stringify(files)) } : {}),
          },
          local: {
            tryBundle: (outputDir) => {
              bundleFunction(props.name, outputDir);
              for (const [name, content] of files) writeFileSync(join(outputDir, name), content);
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
        [ENV.release]: thisRelease(),
        ...props.environment,
      },
    });
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
