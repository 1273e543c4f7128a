// The cost model: what a month costs for a scenario, from what the handlers were measured asking of AWS
// (test/cost/measure.ts), what the stack bills for itself (test/cost/stack.ts) and the price table
// (test/cost/prices.ts). Each line says what it counts; the assumptions that are not measured are named in
// ASSUMPTIONS, each with why, and printed with the figures.
import type { Measurement, Phase } from './measure.ts';
import { addUsage, dynamoTotals, emptyUsage } from './meter.ts';
import { GB, HOURS_PER_MONTH, PRICES } from './prices.ts';
import type { FunctionName, StackFacts, TableName } from './stack.ts';

export interface Scenario {
  key: string;
  title: string;
  patients: number;
  /** Seconds between two vital-sign messages of a patient. */
  intervalSeconds: number;
  /** Messages per gateway request (1: the single route). */
  messagesPerRequest: number;
  /** Records per grade invocation (the SQS poller's batch). */
  recordsPerInvocation: number;
  /** Target, US$ per 1,000 patient-days in month 1. */
  target: number;
}

type Capacity = 'on-demand' | 'provisioned';

/** How a deployment is configured for a scenario: capacity mode, and the table class of the tables that only grow. */
export interface Setup {
  capacity: Capacity;
  /** The audit and seen-messages tables (`-c historyTableClass=...`); CloudFormation's names. */
  historyTableClass: 'STANDARD' | 'STANDARD_INFREQUENT_ACCESS';
}

/** Figures the model cannot measure here, each with its reason; printed with every run. */
export const ASSUMPTIONS = {
  /** Round-trip times of AWS requests from a function in the same region (ms), added to the measured compute. */
  latencyMs: {
    'dynamodb:GetItem': 4,
    'dynamodb:BatchGetItem': 5,
    'dynamodb:Query': 6,
    'dynamodb:PutItem': 6,
    'dynamodb:UpdateItem': 6,
    'dynamodb:DeleteItem': 6,
    'dynamodb:TransactWriteItems': 14,
    'sqs:SendMessageBatch': 10,
    'sqs:SendMessage': 8,
    'sns:Publish': 20,
    'secretsmanager:GetSecretValue': 25,
  } as Record<string, number>,
  /** Lambda gives a function one vCPU at 1,769 MB and a share in proportion below it: compute measured on one core here takes 1769/memory times as long. */
  fullVcpuMb: 1769,
  /** Lambda's platform log events (platform.start and platform.report, JSON format) per invocation, bytes, when the system log level is INFO. */
  platformLogBytes: 560,
  platformLogEvents: 2,
  /** CloudWatch Logs bills archived storage on compressed bytes; JSON log lines compress about 5:1. */
  logCompression: 0.2,
  /** KMS requests: SQS (data key reuse 5 minutes), DynamoDB (table keys cached 5 minutes), Logs and SNS reuse data keys; about 25 role-resource pairs each ask once per 5 minutes. */
  kmsRequestsPerMonth: 25 * 12 * HOURS_PER_MONTH,
  /** Provisioned capacity is set for the average load at the auto-scaling target (70 % utilization); at least 1 unit per table and index. */
  targetUtilization: 0.7,
  /** An idle SQS poller (the escalation timers' queue) long-polls every 20 s; Lambda runs 5 for a queue with traffic spikes only. */
  idlePollsPerMonth: 5 * 3 * 60 * HOURS_PER_MONTH,
} as const;

const DAYS_PER_MONTH = HOURS_PER_MONTH / 24;
const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;

interface Line {
  /** What it is for, grouped for the "top drivers". */
  driver: string;
  item: string;
  /** Quantity per month and its unit (for the reader). */
  quantity: string;
  month1: number;
  month12: number;
}

export interface Priced {
  scenario: Scenario;
  capacity: Capacity;
  lines: Line[];
  patientDaysPerMonth: number;
  messagesPerMonth: number;
  month1: number;
  month12: number;
  /** Per 1,000 patient-days. */
  perKPatientDays1: number;
  perKPatientDays12: number;
  /** Per message: DynamoDB read and write units, and requests by command. */
  perMessage: { read: number; write: number; requests: Record<string, number>; logBytes: number };
}

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(n < 10 ? 2 : 0);

/** Billed milliseconds of one invocation of a phase: its compute scaled to the memory's CPU share, plus its requests' round trips. */
function billedMs(phase: Phase, memoryMb: number, parallel = 1): number {
  if (phase.invocations === 0) return 0;
  const compute = (phase.computeMs / phase.invocations) * Math.max(1, ASSUMPTIONS.fullVcpuMb / memoryMb);
  let wait = 0;
  for (const [k, n] of Object.entries(phase.usage.requests)) wait += (ASSUMPTIONS.latencyMs[k] ?? 10) * n;
  return Math.ceil(compute + wait / phase.invocations / parallel);
}

/** The month's table sizes: bytes that stay (per patient) and bytes that grow (per month). */
interface TableGrowth {
  fixedBytes: number;
  bytesPerMonth: number;
}

/** Average GB over a month's days (month m counts from 1). */
function averageGb(t: TableGrowth, month: number): number {
  const mid = (month - 0.5) / 1; // months since deployment, at mid-month
  return (t.fixedBytes + t.bytesPerMonth * mid) / GB;
}

/** GB-months of backups of a table in month m for a rule (daily, or monthly on a day), split warm and cold. */
function backupGbMonths(
  t: TableGrowth,
  month: number,
  rule: { dayOfMonth?: number; weekly?: boolean; deleteAfterDays: number; coldAfterDays?: number },
): { warm: number; cold: number } {
  const start = Math.round((month - 1) * DAYS_PER_MONTH);
  const end = Math.round(month * DAYS_PER_MONTH);
  let warm = 0;
  let cold = 0;
  for (let day = start; day < end; day++) {
    // Backups taken on earlier days and still kept on this day.
    for (let taken = Math.max(0, day - rule.deleteAfterDays + 1); taken <= day; taken++) {
      if (rule.dayOfMonth !== undefined && taken % Math.round(DAYS_PER_MONTH) !== rule.dayOfMonth - 1) continue;
      if (rule.weekly && taken % 7 !== 0) continue;
      const gb = (t.fixedBytes + t.bytesPerMonth * (taken / DAYS_PER_MONTH)) / GB;
      if (rule.coldAfterDays !== undefined && day - taken >= rule.coldAfterDays) cold += gb;
      else warm += gb;
    }
  }
  const days = end - start;
  return { warm: warm / days, cold: cold / days };
}

/**
 * What SNS bills for pages: the publishes, and a delivery to each subscription of the team paged; an SMS
 * subscription is billed each part of the text (GSM 03.38: 160 characters in one part, 153 a part beyond).
 */
export function pageDeliveryCost(publishes: number, smsParts: number, subs: Record<string, number>): number {
  return (
    publishes *
      (PRICES.sns.perPublish + (subs.email ?? 0) * PRICES.sns.perEmail + (subs.https ?? 0) * PRICES.sns.perHttps) +
    smsParts * (subs.sms ?? 0) * PRICES.sns.perSmsUs
  );
}

export function price(s: Scenario, m: Measurement, stack: StackFacts, setup: Setup): Priced {
  const { capacity } = setup;
  const infrequent = (t: string) =>
    stack.historyTables.includes(t as TableName)
      ? setup.historyTableClass === 'STANDARD_INFREQUENT_ACCESS'
      : stack.tables[t as TableName]?.tableClass === 'STANDARD_INFREQUENT_ACCESS';
  const throughputFactor = (t: string) => (infrequent(t) ? PRICES.dynamodb.infrequentAccess.throughputFactor : 1);
  const storagePerGb = (t: string) =>
    infrequent(t) ? PRICES.dynamodb.infrequentAccess.storagePerGbMonth : PRICES.dynamodb.storagePerGbMonth;
  const lines: Line[] = [];
  const add = (driver: string, item: string, quantity: string, month1: number, month12 = month1) =>
    lines.push({ driver, item, quantity, month1, month12 });
  const patientDaysPerMonth = s.patients * DAYS_PER_MONTH;
  const runPatientDays = (m.options.patients * m.options.hours) / 24;
  const messagesPerMonth = (m.messages / runPatientDays) * patientDaysPerMonth;
  const perMessage = messagesPerMonth / m.messages; // scales the per-message phases (ingest, grade)
  const perPatientDay = patientDaysPerMonth / runPatientDays; // scales the per-page phases (notify, ack, timers)
  const ticksPerMonth = HOURS_PER_MONTH * 60;

  const phases: { fn: FunctionName; phase: Phase; scale: number; parallel?: number }[] = [
    { fn: 'ingest', phase: m.ingest, scale: perMessage },
    { fn: 'grade', phase: m.grade, scale: perMessage, parallel: s.recordsPerInvocation },
    { fn: 'notify', phase: m.notify, scale: perPatientDay },
    { fn: 'ack', phase: m.ack, scale: perPatientDay },
    { fn: 'escalate', phase: m.timers, scale: perPatientDay },
    { fn: 'escalate', phase: m.tick, scale: ticksPerMonth },
  ];

  // ---- API Gateway: every gateway request and acknowledgement.
  const apiRequests = m.requests * perMessage + m.ack.invocations * perPatientDay;
  add(
    'API Gateway requests',
    'HTTP API requests (device messages and acknowledgements)',
    fmt(apiRequests),
    apiRequests * PRICES.apiGateway.perRequest,
  );

  // ---- Lambda: requests and GB-seconds per function, from the stack's memory.
  const lambda = new Map<FunctionName, { invocations: number; gbSeconds: number; ms: number }>();
  for (const { fn, phase, scale, parallel } of phases) {
    const memory = stack.functions[fn].memoryMb;
    const invocations = phase.invocations * scale;
    const ms = billedMs(phase, memory, parallel);
    const o = lambda.get(fn) ?? { invocations: 0, gbSeconds: 0, ms };
    o.invocations += invocations;
    o.gbSeconds += invocations * (ms / 1000) * (memory / 1024);
    lambda.set(fn, o);
  }
  for (const [fn, o] of lambda) {
    add(
      `Lambda ${fn}`,
      `${fn}: ${fmt(o.invocations)} invocations x ~${o.ms} ms at ${stack.functions[fn].memoryMb} MB`,
      `${fmt(o.gbSeconds)} GB-s`,
      o.invocations * PRICES.lambda.perRequest + o.gbSeconds * PRICES.lambda.perGbSecondArm,
    );
  }

  // ---- SQS: sends (64 KB chunks), and the poller's receive and delete per grade batch; the timers' queue.
  const sent = (m.ingest.usage.chunks['sqs:SendMessageBatch'] ?? 0) * perMessage;
  const gradeBatches = m.grade.invocations * perMessage;
  add(
    'SQS requests',
    'FIFO queue: sends, and a receive and a delete per grade batch',
    fmt(sent + 2 * gradeBatches),
    (sent + 2 * gradeBatches) * PRICES.sqs.perFifoRequest,
  );
  const timerSends =
    (m.notify.usage.chunks['sqs:SendMessage'] ?? 0) +
    (m.timers.usage.chunks['sqs:SendMessage'] ?? 0) +
    (m.tick.usage.chunks['sqs:SendMessage'] ?? 0) * (ticksPerMonth / perPatientDay);
  const timerRequests =
    timerSends * perPatientDay + 2 * m.timers.invocations * perPatientDay + ASSUMPTIONS.idlePollsPerMonth;
  add(
    'SQS requests',
    'escalation timers: sends, receives, deletes, idle long polls',
    fmt(timerRequests),
    timerRequests * PRICES.sqs.perStandardRequest,
  );

  // ---- DynamoDB: capacity by table, on demand or provisioned.
  const byTable = new Map<string, { read: number; write: number; index: number }>();
  for (const { phase, scale } of phases) {
    for (const [t, d] of Object.entries(phase.usage.dynamo)) {
      const o = byTable.get(t) ?? { read: 0, write: 0, index: 0 };
      o.read += d.read * scale;
      o.write += (d.write + d.transactionalWrite) * scale;
      o.index += d.indexWrite * scale;
      byTable.set(t, o);
    }
  }
  // The tables written on every message (the stack decides which); the others stay on demand.
  const provisionedTables = new Set<string>(capacity === 'provisioned' ? stack.perMessageTables : []);
  for (const [t, o] of byTable) {
    if (provisionedTables.has(t)) {
      const units = (perMonth: number) =>
        Math.max(1, Math.ceil(perMonth / SECONDS_PER_MONTH / ASSUMPTIONS.targetUtilization));
      const rcu = units(o.read);
      const wcu = units(o.write);
      const indexWcu = o.index > 0 ? units(o.index) : 0;
      add(
        'DynamoDB capacity',
        `${t}: provisioned ${rcu} RCU, ${wcu} WCU${indexWcu ? ` + ${indexWcu} index WCU` : ''}${infrequent(t) ? ' (Standard-IA)' : ''}`,
        `${fmt(o.read)} RU, ${fmt(o.write + o.index)} WU`,
        (rcu * PRICES.dynamodb.perRcuHour + (wcu + indexWcu) * PRICES.dynamodb.perWcuHour) *
          HOURS_PER_MONTH *
          throughputFactor(t),
      );
    } else {
      add(
        'DynamoDB capacity',
        `${t}: on-demand reads and writes${o.index ? ' (with its index)' : ''}${infrequent(t) ? ' (Standard-IA)' : ''}`,
        `${fmt(o.read)} RRU, ${fmt(o.write + o.index)} WRU`,
        (o.read * PRICES.dynamodb.perReadRequestUnit + (o.write + o.index) * PRICES.dynamodb.perWriteRequestUnit) *
          throughputFactor(t),
      );
    }
  }

  // ---- DynamoDB storage, point-in-time recovery and backups, growing month by month.
  const growth = new Map<TableName, TableGrowth>();
  const perPatient = (t: string) => (m.storage[t]?.bytes ?? 0) / m.options.patients;
  growth.set('state', { fixedBytes: perPatient('state') * s.patients, bytesPerMonth: 0 });
  growth.set('tokens', { fixedBytes: m.storage.tokens?.bytes ?? 0, bytesPerMonth: 0 });
  for (const t of ['audit', 'pages', 'seen'] as const)
    if (m.storage[t]) growth.set(t, { fixedBytes: 0, bytesPerMonth: m.storage[t]!.bytes * perPatientDay });
  for (const [t, g] of growth) {
    const facts = stack.tables[t];
    if (!facts) continue;
    const gb1 = averageGb(g, 1);
    const gb12 = averageGb(g, 12);
    if (gb12 < 1e-4) continue;
    add(
      `DynamoDB storage (${t})`,
      `${t}: storage${infrequent(t) ? ' (Standard-IA)' : ''}${facts.pitr ? ' and point-in-time recovery' : ''}`,
      `${gb1.toFixed(2)} -> ${gb12.toFixed(2)} GB`,
      gb1 * (storagePerGb(t) + (facts.pitr ? PRICES.dynamodb.pitrPerGbMonth : 0)),
      gb12 * (storagePerGb(t) + (facts.pitr ? PRICES.dynamodb.pitrPerGbMonth : 0)),
    );
    for (const rule of stack.backups.filter((r) => r.tables.includes(t))) {
      const b1 = backupGbMonths(g, 1, rule);
      const b12 = backupGbMonths(g, 12, rule);
      const cost = (b: { warm: number; cold: number }) =>
        b.warm * PRICES.backup.warmPerGbMonth + b.cold * PRICES.backup.coldPerGbMonth;
      add(
        `DynamoDB storage (${t})`,
        `${t}: AWS Backup "${rule.name}" kept ${rule.deleteAfterDays} days${rule.coldAfterDays !== undefined ? `, cold after ${rule.coldAfterDays}` : ''}`,
        `${(b1.warm + b1.cold).toFixed(1)} -> ${(b12.warm + b12.cold).toFixed(1)} GB-months`,
        cost(b1),
        cost(b12),
      );
    }
  }

  // ---- CloudWatch Logs: what the functions write (measured), Lambda's platform events, the API's access log.
  let logBytes = 0;
  let logEvents = 0;
  for (const { fn, phase, scale } of phases) {
    logBytes += phase.logBytes * scale;
    logEvents += phase.logLines * scale;
    if (stack.functions[fn].systemLogLevel === 'INFO' || stack.functions[fn].systemLogLevel === 'DEBUG') {
      logBytes += phase.invocations * scale * ASSUMPTIONS.platformLogBytes;
      logEvents += phase.invocations * scale * ASSUMPTIONS.platformLogEvents;
    }
  }
  const accessLine = stack.accessLogFormat
    .replace('$context.requestId', 'Xa1bCdEfIAMEbXw=')
    .replace('$context.requestTime', '01/Dec/2026:17:53:13 +0000')
    .replace('$context.routeKey', 'POST /v1/messages')
    .replace('$context.status', '202')
    .replace('$context.identity.sourceIp', '203.0.113.10')
    .replace('$context.responseLength', '52')
    .replace('$context.responseLatency', '41')
    .replace('$context.integrationErrorMessage', '-');
  logBytes += apiRequests * Buffer.byteLength(accessLine);
  logEvents += apiRequests;
  const ingestedGb = (logBytes + logEvents * PRICES.cloudwatch.logEventOverheadBytes) / GB;
  add(
    'CloudWatch Logs',
    'log ingestion (functions, Lambda platform events, API access log)',
    `${ingestedGb.toFixed(2)} GB`,
    ingestedGb * PRICES.cloudwatch.logIngestPerGb,
  );
  const keptMonths = stack.logRetentionDays / DAYS_PER_MONTH;
  const stored = (month: number) => ingestedGb * Math.min(month - 0.5, keptMonths) * ASSUMPTIONS.logCompression;
  add(
    'CloudWatch Logs',
    `log storage (kept ${stack.logRetentionDays} days, compressed)`,
    `${stored(1).toFixed(2)} -> ${stored(12).toFixed(2)} GB`,
    stored(1) * PRICES.cloudwatch.logStoragePerGbMonth,
    stored(12) * PRICES.cloudwatch.logStoragePerGbMonth,
  );

  // ---- CloudWatch metrics and alarms.
  const metrics = new Set<string>();
  for (const { fn, phase } of phases) for (const name of phase.metrics) metrics.add(`${fn}:${name}`);
  add(
    'CloudWatch metrics and alarms',
    `custom metrics published (${metrics.size})`,
    `${metrics.size} metrics`,
    metrics.size * PRICES.cloudwatch.perMetricMonth,
  );
  add(
    'CloudWatch metrics and alarms',
    `alarms (${stack.alarms}, watching ${stack.alarmMetrics} metrics)`,
    `${stack.alarmMetrics} alarm metrics`,
    stack.alarmMetrics * PRICES.cloudwatch.perAlarmMetricMonth,
  );

  // ---- Keys, secrets, pages, trail.
  add(
    'KMS',
    `customer managed keys (${stack.kmsKeys}) and their requests`,
    `${stack.kmsKeys} keys`,
    stack.kmsKeys * PRICES.kms.perKeyMonth + ASSUMPTIONS.kmsRequestsPerMonth * PRICES.kms.perRequest,
  );
  // Its reads as the handlers made them: at a cold start, and again once 5 minutes old when a link is signed or
  // verified (2026-12-06). Scaled with their phases: an upper bound, since a warm container reads by time, not load.
  const secretReads = phases.reduce(
    (n, { phase, scale }) => n + (phase.usage.requests['secretsmanager:GetSecretValue'] ?? 0) * scale,
    0,
  );
  add(
    'Secrets Manager',
    `the acknowledge-link key (${stack.secrets} secret) and its reads`,
    `${stack.secrets}, ${fmt(secretReads)} reads`,
    stack.secrets * PRICES.secretsManager.perSecretMonth + secretReads * PRICES.secretsManager.perRequest,
  );
  // The pages are published by the notifier, and by the escalate function when a level or round is due.
  const paging = [m.notify, m.timers, m.tick];
  const publishes = paging.reduce((n, p) => n + (p.usage.requests['sns:Publish'] ?? 0), 0) * perPatientDay;
  // An SMS subscriber is billed the parts of the kinds of page its filter lets through (smsKinds), every kind without.
  const smsKinds = stack.smsKinds.hematology;
  const smsParts =
    paging.reduce(
      (n, p) =>
        n +
        Object.entries(p.usage.smsParts).reduce(
          (k, [kind, parts]) => k + (!smsKinds || smsKinds.includes(kind) ? parts : 0),
          0,
        ),
      0,
    ) * perPatientDay;
  // Deliveries: each page reaches its team's subscriptions (the synthesized paging config gives the hematology team, which CRS 1 pages, one email and one SMS).
  const subs = stack.subscriptions.hematology ?? {};
  add(
    'SNS pages',
    `${fmt(publishes)} pages sent: publishes and deliveries (${Object.entries(subs)
      .map(([p, n]) => `${n} ${p}`)
      .join(
        ', ',
      )} each${subs.sms && publishes > 0 ? `; ${fmt(smsParts / publishes)} SMS parts a page${smsKinds ? ` (SMS only for ${smsKinds.filter((k) => k !== 'test').join(', ')})` : ''}` : ''})`,
    fmt(publishes),
    pageDeliveryCost(publishes, smsParts, subs),
  );
  if (stack.auditDataEvents) {
    const auditRequests = phases.reduce(
      (n, { phase, scale }) =>
        n +
        (phase.usage.dynamo.audit
          ? (phase.usage.requests['dynamodb:PutItem'] ?? 0) + (phase.usage.requests['dynamodb:TransactWriteItems'] ?? 0)
          : 0) *
          scale,
      0,
    );
    add(
      'CloudTrail',
      'data events on the audit table',
      fmt(auditRequests),
      auditRequests * PRICES.cloudTrail.perDataEvent,
    );
  }

  const month1 = lines.reduce((n, l) => n + l.month1, 0);
  const month12 = lines.reduce((n, l) => n + l.month12, 0);
  const reqs: Record<string, number> = {};
  for (const k of Object.keys({ ...m.ingest.usage.requests, ...m.grade.usage.requests })) {
    reqs[k] = ((m.ingest.usage.requests[k] ?? 0) + (m.grade.usage.requests[k] ?? 0)) / m.messages;
  }
  const units = dynamoTotals(addUsage(addUsage(emptyUsage(), m.ingest.usage), m.grade.usage));
  return {
    scenario: s,
    capacity,
    lines,
    patientDaysPerMonth,
    messagesPerMonth,
    month1,
    month12,
    perKPatientDays1: (month1 / patientDaysPerMonth) * 1000,
    perKPatientDays12: (month12 / patientDaysPerMonth) * 1000,
    perMessage: {
      read: units.read / m.messages,
      write: units.write / m.messages,
      requests: reqs,
      logBytes: (m.ingest.logBytes + m.grade.logBytes) / m.messages,
    },
  };
}

/** The lines grouped by driver, largest first. */
export function drivers(p: Priced, month: 1 | 12 = 1): { driver: string; cost: number; share: number }[] {
  const by = new Map<string, number>();
  for (const l of p.lines) by.set(l.driver, (by.get(l.driver) ?? 0) + (month === 1 ? l.month1 : l.month12));
  const total = month === 1 ? p.month1 : p.month12;
  return [...by].map(([driver, cost]) => ({ driver, cost, share: cost / total })).sort((a, b) => b.cost - a.cost);
}

/**
 * What no design of the write path goes below in this architecture: the pages (their count is clinical), the fixed
 * costs (alarms, metrics, keys, the secret) and the API Gateway and SQS FIFO requests at this batching, with no
 * DynamoDB, Lambda or logs at all. A target below it cannot be met by the grading code, only by the scenario
 * (cheaper page delivery, larger batches) or another front door and queue.
 */
const FLOOR_DRIVERS = [
  'SNS pages',
  'CloudWatch metrics and alarms',
  'KMS',
  'Secrets Manager',
  'API Gateway requests',
  'SQS requests',
] as const;

export function floor(p: Priced): { month1: number; perKPatientDays1: number; pagesPerKPatientDays1: number } {
  const of = (drivers: readonly string[]) =>
    p.lines.filter((l) => drivers.includes(l.driver)).reduce((s, l) => s + l.month1, 0);
  const perK = (usd: number) => (usd / p.patientDaysPerMonth) * 1000;
  const month1 = of(FLOOR_DRIVERS);
  return { month1, perKPatientDays1: perK(month1), pagesPerKPatientDays1: perK(of(['SNS pages'])) };
}
