// The price table of the cost model: AWS list prices in us-east-1 (N. Virginia), in US dollars, without the free
// tier (a production account outgrows it) or taxes. Figures as published on each service's pricing page listed
// below; the table was written on the date in PRICES_AS_OF from the pages' published figures (this machine has no
// access to the live pages): check them before budgeting, and change them here, where every figure has its source.
export const PRICES_AS_OF = '2026-12-01';
export const REGION = 'us-east-1';

export const PRICES = {
  lambda: {
    source: 'https://aws.amazon.com/lambda/pricing/ (Arm: first 7.5 billion GB-s a month)',
    perRequest: 0.2 / 1e6,
    perGbSecondArm: 0.0000133334,
  },
  apiGateway: {
    source:
      'https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs, first 300 million requests a month; each 512 KB counts as one request)',
    perRequest: 1.0 / 1e6,
  },
  sqs: {
    source: 'https://aws.amazon.com/sqs/pricing/ (FIFO requests; each 64 KB chunk of a payload is one request)',
    perFifoRequest: 0.5 / 1e6,
    perStandardRequest: 0.4 / 1e6,
  },
  dynamodb: {
    source: 'https://aws.amazon.com/dynamodb/pricing/ (on-demand and provisioned, Standard table class)',
    perWriteRequestUnit: 0.625 / 1e6,
    perReadRequestUnit: 0.125 / 1e6,
    perWcuHour: 0.00065,
    perRcuHour: 0.00013,
    storagePerGbMonth: 0.25,
    pitrPerGbMonth: 0.2,
    /** Reads of a table's stream by a Lambda trigger are free ("GetRecords calls by AWS Lambda ... are free"). */
    streamReadsByLambda: 0,
    /**
     * The Standard-IA table class (same pages): storage at $0.10 a GB-month, reads and writes (on demand and
     * provisioned) 25 % dearer; point-in-time recovery and backups priced as Standard.
     */
    infrequentAccess: { storagePerGbMonth: 0.1, throughputFactor: 1.25 },
  },
  backup: {
    source:
      'https://aws.amazon.com/backup/pricing/ (DynamoDB: warm storage, and cold storage with advanced features for DynamoDB backups)',
    warmPerGbMonth: 0.1,
    coldPerGbMonth: 0.03,
  },
  kms: {
    source: 'https://aws.amazon.com/kms/pricing/',
    perKeyMonth: 1.0,
    perRequest: 0.03 / 10_000,
  },
  cloudwatch: {
    source:
      'https://aws.amazon.com/cloudwatch/pricing/ (Logs Standard ingestion and archive; first 10,000 metrics; standard-resolution alarms per metric)',
    logIngestPerGb: 0.5,
    logStoragePerGbMonth: 0.03,
    perMetricMonth: 0.3,
    perAlarmMetricMonth: 0.1,
    /** Bytes CloudWatch Logs adds to each event for ingestion billing. */
    logEventOverheadBytes: 26,
  },
  sns: {
    source:
      'https://aws.amazon.com/sns/pricing/ (publishes; deliveries by protocol; SMS to US numbers, before carrier fees)',
    perPublish: 0.5 / 1e6,
    perEmail: 2.0 / 100_000,
    perHttps: 0.6 / 1e6,
    perSmsUs: 0.00581,
  },
  secretsManager: {
    source: 'https://aws.amazon.com/secrets-manager/pricing/',
    perSecretMonth: 0.4,
    perRequest: 0.05 / 10_000,
  },
  cloudTrail: {
    source: 'https://aws.amazon.com/cloudtrail/pricing/ (data events)',
    perDataEvent: 0.1 / 100_000,
  },
  eventBridge: {
    source: 'https://aws.amazon.com/eventbridge/pricing/ (scheduled rules deliver AWS events: no charge)',
    perScheduledEvent: 0,
  },
} as const;

/** Hours in a billing month (AWS prices capacity and keys by the hour: 730 a month). */
export const HOURS_PER_MONTH = 730;
export const GB = 1024 ** 3;
