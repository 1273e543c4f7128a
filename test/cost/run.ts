// `npm run cost`: what the stack costs to run on AWS, for the two scenarios of issue 14, from a run of the deployed
// handlers over the fakes (test/cost/measure.ts), the synthesized stack (test/cost/stack.ts) and the price table
// (test/cost/prices.ts). Prints each scenario's month 1 and month 12, per 1,000 patient-days, the top drivers,
// on-demand and provisioned side by side, and the targets as met or not. `--json FILE` also writes the figures.
import '../support/quiet-sdk.ts';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { measure, type Measurement, type Phase } from './measure.ts';
import type { Usage } from './meter.ts';
import { ASSUMPTIONS, drivers, floor, price, type Priced, type Scenario, type Setup } from './model.ts';
import { PRICES_AS_OF, REGION } from './prices.ts';
import { stackFacts } from './stack.ts';

/** The scenarios of issue 14, as an operator sizes a deployment (docs/cost.md says how to change them). */
export const SCENARIOS: Scenario[] = [
  {
    key: 'a',
    title: '100 patients, a message a minute each',
    patients: 100,
    intervalSeconds: 60,
    messagesPerRequest: 1,
    recordsPerInvocation: 1,
    target: 10,
  },
  {
    key: 'b',
    title: '1,000 patients, a message every 15 s each',
    patients: 1000,
    intervalSeconds: 15,
    messagesPerRequest: 1,
    recordsPerInvocation: 1,
    target: 6,
  },
];

/**
 * Gateway batching (the batch route, docs/cost.md): a gateway that posts its beds' messages together, 10 a request,
 * costs one API request, one ingest invocation and one SQS request per 10 messages, and SQS hands them to the grade
 * function together. Each scenario is also measured that way, and printed beside the one-by-one figures.
 */
export const BATCHED = { messagesPerRequest: 10, recordsPerInvocation: 10 } as const;

/**
 * The set-up docs/cost.md recommends for a scenario: provisioned capacity once the load is steady and large, and
 * there the Standard-IA table class for the tables that only grow (their storage soon outweighs their writes).
 */
export const RECOMMENDED: Record<string, Setup> = {
  a: { capacity: 'on-demand', historyTableClass: 'STANDARD' },
  b: { capacity: 'provisioned', historyTableClass: 'STANDARD_INFREQUENT_ACCESS' },
};

/**
 * How much of the ward the handlers are run over: two days of six patients at a message a minute, of three at one
 * every 15 s. Two days, so that a fever's course is whole: its CRS 1 page, and the de-escalation page an hour after
 * the grade falls, 24 hours after the last fever (a one-day run saw only the first half of the pages).
 */
const HARNESS: Record<string, { patients: number; hours: number }> = {
  a: { patients: 6, hours: 48 },
  b: { patients: 3, hours: 48 },
};

/**
 * Batching changes what ingest and grade do, nothing after them. Ingest and grade are measured batched over as
 * many patients as a grade batch holds records (with 100 or 1,000 patients, a batch of 10 holds 10 patients, one
 * message each: 3 patients would put 3 or 4 messages of one patient in a batch and save writes no ward would),
 * for as many patient-hours as the one-by-one run; the rest (pages, storage) is the one-by-one run's.
 */
async function measureBatched(
  one: Measurement,
  run: (patients: number, hours: number) => Promise<Measurement>,
): Promise<Measurement> {
  const patients = Math.max(one.options.patients, BATCHED.recordsPerInvocation);
  const hours = Math.ceil((one.options.patients * one.options.hours) / patients);
  const b = await run(patients, hours);
  const r = one.messages / b.messages;
  const scaled = <P extends Phase>(p: P): P => ({
    ...p,
    invocations: p.invocations * r,
    computeMs: p.computeMs * r,
    logBytes: p.logBytes * r,
    logLines: p.logLines * r,
    usage: scaleUsage(p.usage, r),
    ...('records' in p ? { records: (p.records as number) * r } : {}),
  });
  return {
    ...one,
    options: {
      ...one.options,
      messagesPerRequest: BATCHED.messagesPerRequest,
      recordsPerInvocation: BATCHED.recordsPerInvocation,
    },
    requests: b.requests * r,
    ingest: scaled(b.ingest),
    grade: scaled(b.grade),
  };
}

function scaleUsage(u: Usage, r: number): Usage {
  const times = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v * r]));
  return {
    requests: times(u.requests),
    chunks: times(u.chunks),
    dynamo: Object.fromEntries(Object.entries(u.dynamo).map(([t, d]) => [t, times(d) as typeof d])),
    smsParts: times(u.smsParts),
  };
}

const usd = (n: number) => `$${n < 10 ? n.toFixed(2) : n.toFixed(0)}`;
const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

function printLines(p: Priced): void {
  console.log(`  ${pad('line', 78)} ${lpad('month 1', 9)} ${lpad('month 12', 9)}`);
  for (const l of [...p.lines].sort((a, b) => b.month1 - a.month1)) {
    if (l.month1 < 0.005 && l.month12 < 0.005) continue;
    console.log(`  ${pad(l.item, 78)} ${lpad(usd(l.month1), 9)} ${lpad(usd(l.month12), 9)}`);
  }
  console.log(`  ${pad('total a month', 78)} ${lpad(usd(p.month1), 9)} ${lpad(usd(p.month12), 9)}`);
  console.log(
    `  ${pad('per 1,000 patient-days', 78)} ${lpad(usd(p.perKPatientDays1), 9)} ${lpad(usd(p.perKPatientDays12), 9)}`,
  );
}

export async function run(jsonFile?: string): Promise<{ met: boolean }> {
  const stack = stackFacts();
  const out: Record<string, unknown> = {
    pricesAsOf: PRICES_AS_OF,
    region: REGION,
    assumptions: ASSUMPTIONS,
    scenarios: {},
  };
  console.log(`\n== cost: the stack on AWS, ${REGION} list prices as of ${PRICES_AS_OF} (test/cost/prices.ts) ==`);
  console.log(
    `stack: ${stack.kmsKeys} KMS keys, ${stack.alarms} alarms on ${stack.alarmMetrics} metrics, functions ${Object.entries(
      stack.functions,
    )
      .map(([f, x]) => `${f} ${x.memoryMb} MB`)
      .join(', ')}; ` +
      `log level ${stack.functions.grade.powertoolsLogLevel}, Lambda system logs ${stack.functions.grade.systemLogLevel}; logs kept ${stack.logRetentionDays} days; ` +
      `backups ${stack.backups.map((b) => `${b.name} kept ${b.deleteAfterDays} d${b.coldAfterDays !== undefined ? ` (cold after ${b.coldAfterDays})` : ''} of ${b.tables.join('+')}`).join('; ')}`,
  );
  let met = true;
  for (const s of SCENARIOS) {
    const h = HARNESS[s.key]!;
    const run = (x: Scenario, patients = h.patients, hours = h.hours) =>
      measure({
        patients,
        hours,
        intervalSeconds: x.intervalSeconds,
        messagesPerRequest: x.messagesPerRequest,
        recordsPerInvocation: x.recordsPerInvocation,
        logLevel: stack.functions.grade.powertoolsLogLevel,
        tickPatients: x.patients,
      });
    const batched: Scenario = { ...s, ...BATCHED };
    const m: Measurement = await run(s);
    const mb: Measurement = await measureBatched(m, (patients, hours) => run(batched, patients, hours));
    const setup = RECOMMENDED[s.key]!;
    const mode = setup.capacity;
    const withCapacity = (capacity: Setup['capacity']) => ({ ...setup, capacity });
    const priced = {
      'on-demand': price(s, m, stack, withCapacity('on-demand')),
      provisioned: price(s, m, stack, withCapacity('provisioned')),
    };
    const pricedBatched = {
      'on-demand': price(batched, mb, stack, withCapacity('on-demand')),
      provisioned: price(batched, mb, stack, withCapacity('provisioned')),
    };
    const recommended = priced[mode];
    console.log(
      `\n-- (${s.key}) ${s.title}: ${Math.round(recommended.messagesPerMonth).toLocaleString('en-US')} messages and ${Math.round(recommended.patientDaysPerMonth).toLocaleString('en-US')} patient-days a month`,
    );
    console.log(
      `   gateway: ${s.messagesPerRequest} message(s) a request; grade batches of ${s.recordsPerInvocation} record(s); ` +
        `measured over ${m.messages.toLocaleString('en-US')} messages (${h.patients} patients, ${h.hours} h): ` +
        `per message ${recommended.perMessage.read.toFixed(2)} read and ${recommended.perMessage.write.toFixed(2)} write units, ` +
        `${Object.entries(recommended.perMessage.requests)
          .map(([k, v]) => `${v.toFixed(2)} ${k}`)
          .join(', ')}, ${Math.round(recommended.perMessage.logBytes)} log bytes; ` +
        `state items at the end ${Math.round(m.stateItem.mean)} B (largest ${m.stateItem.max} B); ${m.notifications} grade changes and alerts paged, ${m.pages} pages to answer`,
    );
    const ia = setup.historyTableClass === 'STANDARD_INFREQUENT_ACCESS';
    console.log(
      `   capacity: ${mode}${mode === 'provisioned' ? ` (tables ${stack.perMessageTables.join(', ')})` : ''}; ` +
        `tables that only grow (${stack.historyTables.join(', ')}) ${ia ? 'Standard-IA' : 'Standard'} (docs/cost.md's recommendation at this load)`,
    );
    printLines(recommended);
    const top = drivers(recommended).slice(0, 3);
    console.log(
      `   top drivers (month 1): ${top.map((d) => `${d.driver} ${usd(d.cost)} (${Math.round(d.share * 100)} %)`).join('; ')}`,
    );
    const perK = (p: Priced) => `${usd(p.perKPatientDays1)} (month 12 ${usd(p.perKPatientDays12)})`;
    console.log(`   per 1,000 patient-days, month 1  ${pad('on-demand', 22)} ${pad('provisioned', 22)}`);
    console.log(
      `     one message a request          ${pad(perK(priced['on-demand']), 22)} ${pad(perK(priced.provisioned), 22)}`,
    );
    console.log(
      `     gateway batching (${BATCHED.messagesPerRequest} a request)  ${pad(perK(pricedBatched['on-demand']), 22)} ${pad(perK(pricedBatched.provisioned), 22)}`,
    );
    // The other table class for the tables that only grow, in the recommended capacity mode: what it would change.
    const other: Setup = { ...setup, historyTableClass: ia ? 'STANDARD' : 'STANDARD_INFREQUENT_ACCESS' };
    const alt = price(s, m, stack, other);
    const delta = (a: number, b: number) => `${a - b >= 0 ? '+' : '-'}${usd(Math.abs(a - b))}`;
    console.log(
      `   the tables that only grow in ${ia ? 'Standard' : 'Standard-IA'} instead: month 1 ${delta(alt.perKPatientDays1, recommended.perKPatientDays1)}, ` +
        `month 12 ${delta(alt.perKPatientDays12, recommended.perKPatientDays12)} per 1,000 patient-days`,
    );
    // A lever of the paging config, priced on the same measurement: informational pages (a grade fallen after its
    // hold, an alert cleared: nothing to acknowledge) by email only, the SMS kept for what waits for an answer.
    const answerOnly = { ...stack, smsKinds: { ...stack.smsKinds, hematology: ['escalation', 'alert', 'test'] } };
    // Its month 12 too: a cheaper month 1 with the same history to keep raises the month-12 ratio.
    const answerOnlyBatched = price(batched, mb, answerOnly, setup);
    if (!stack.smsKinds.hematology)
      console.log(
        `   SMS only for the pages that wait for an answer (smsKinds ["escalation", "alert"]; docs/aws.md): month 1 ` +
          `${usd(price(s, m, answerOnly, setup).perKPatientDays1)}, batched ${usd(answerOnlyBatched.perKPatientDays1)} ` +
          `(month 12 ${(answerOnlyBatched.month12 / answerOnlyBatched.month1).toFixed(2)} x month 1) per 1,000 patient-days in ${mode}` +
          ` (batched on-demand ${usd(price(batched, mb, answerOnly, withCapacity('on-demand')).perKPatientDays1)}, provisioned ${usd(price(batched, mb, answerOnly, withCapacity('provisioned')).perKPatientDays1)})`,
      );
    // And no page by SMS at all (e-mail and HTTPS only, the SMS numbers kept for `crs doctor`'s test pages): what the
    // pages' channel alone decides of the target.
    const noSms = { ...stack, smsKinds: { ...stack.smsKinds, hematology: ['test'] } };
    if (!stack.smsKinds.hematology)
      console.log(
        `   no page by SMS (e-mail and HTTPS only): batched ${usd(price(batched, mb, noSms, setup).perKPatientDays1)} per 1,000 patient-days in ${mode}`,
      );
    const saving = recommended.perKPatientDays1 - pricedBatched[mode].perKPatientDays1;
    console.log(
      `   gateway batching saves ${usd(saving)} per 1,000 patient-days (${Math.round((saving / recommended.perKPatientDays1) * 100)} %) in ${mode}`,
    );
    const verdicts = (
      [
        ['one message a request', recommended],
        [`gateway batching`, pricedBatched[mode]],
      ] as const
    ).map(([label, p]) => {
      const month1Met = p.perKPatientDays1 <= s.target;
      const growthMet = p.month12 <= 2 * p.month1;
      const f = floor(p);
      console.log(
        `   target (${label}, ${mode}): month 1 ${usd(p.perKPatientDays1)} <= ${usd(s.target)} per 1,000 patient-days: ${month1Met ? 'met' : 'NOT MET'}; ` +
          `month 12 ${(p.month12 / p.month1).toFixed(2)} x month 1 <= 2: ${growthMet ? 'met' : 'NOT MET'}`,
      );
      console.log(
        `     floor with no DynamoDB, Lambda or logs at all (pages ${usd(f.pagesPerKPatientDays1)}, alarms, metrics, keys, secret, API and SQS requests): ` +
          `${usd(f.perKPatientDays1)} per 1,000 patient-days${f.perKPatientDays1 > s.target ? ': the target is below it, out of reach of the write path' : `: ${usd(s.target - f.perKPatientDays1)} left for DynamoDB, Lambda and logs`}`,
      );
      return month1Met && growthMet;
    });
    met &&= verdicts[0]!;
    (out.scenarios as Record<string, unknown>)[s.key] = {
      scenario: s,
      setup,
      priced,
      pricedBatched,
      floor: { perMessage: floor(recommended), batched: floor(pricedBatched[mode]) },
      measured: { messages: m.messages, stateItem: m.stateItem, pages: m.pages, notifications: m.notifications },
    };
  }
  console.log(`\nassumptions (not measured here): ${JSON.stringify(ASSUMPTIONS)}`);
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify(out, null, 2));
  return { met };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: 'string' } } });
  const { met } = await run(values.json);
  process.exitCode = met ? 0 : 1;
}
