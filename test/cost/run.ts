// `npm run cost`: what the stack costs to run on AWS, for the two scenarios of issue 14, from a run of the deployed
// handlers over the fakes (test/cost/measure.ts), the synthesized stack (test/cost/stack.ts) and the price table
// (test/cost/prices.ts). Prints each scenario's month 1 and month 12, per 1,000 patient-days, the top drivers,
// on-demand and provisioned side by side, and the targets as met or not. `--json FILE` also writes the figures.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { measure, type Measurement } from './measure.ts';
import { ASSUMPTIONS, drivers, price, type Capacity, type Priced, type Scenario } from './model.ts';
import { PRICES_AS_OF, REGION } from './prices.ts';
import { stackFacts } from './stack.ts';

/** The scenarios of issue 14, as an operator sizes a deployment (docs/cost.md says how to change them). */
export const SCENARIOS: Scenario[] = [
  { key: 'a', title: '100 patients, a message a minute each', patients: 100, intervalSeconds: 60, messagesPerRequest: 1, recordsPerInvocation: 1, target: 10 },
  { key: 'b', title: '1,000 patients, a message every 15 s each', patients: 1000, intervalSeconds: 15, messagesPerRequest: 1, recordsPerInvocation: 1, target: 6 },
];

/** The capacity mode the README recommends for a scenario: provisioned once the load is steady and large. */
export const RECOMMENDED: Record<string, Capacity> = { a: 'on-demand', b: 'provisioned' };

/** How much of the ward the handlers are run over: a day of six patients at a message a minute, of three at one every 15 s. */
const HARNESS: Record<string, { patients: number; hours: number }> = { a: { patients: 6, hours: 24 }, b: { patients: 3, hours: 24 } };

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
  console.log(`  ${pad('per 1,000 patient-days', 78)} ${lpad(usd(p.perKPatientDays1), 9)} ${lpad(usd(p.perKPatientDays12), 9)}`);
}

export async function run(jsonFile?: string): Promise<{ met: boolean }> {
  const stack = stackFacts();
  const out: Record<string, unknown> = { pricesAsOf: PRICES_AS_OF, region: REGION, assumptions: ASSUMPTIONS, scenarios: {} };
  console.log(`\n== cost: the stack on AWS, ${REGION} list prices as of ${PRICES_AS_OF} (test/cost/prices.ts) ==`);
  console.log(
    `stack: ${stack.kmsKeys} KMS keys, ${stack.alarms} alarms on ${stack.alarmMetrics} metrics, functions ${Object.entries(stack.functions).map(([f, x]) => `${f} ${x.memoryMb} MB`).join(', ')}; ` +
      `log level ${stack.functions.grade.powertoolsLogLevel}, Lambda system logs ${stack.functions.grade.systemLogLevel}; logs kept ${stack.logRetentionDays} days; ` +
      `backups ${stack.backups.map((b) => `${b.name} kept ${b.deleteAfterDays} d${b.coldAfterDays !== undefined ? ` (cold after ${b.coldAfterDays})` : ''} of ${b.tables.join('+')}`).join('; ')}`,
  );
  let met = true;
  for (const s of SCENARIOS) {
    const h = HARNESS[s.key]!;
    const m: Measurement = await measure({
      patients: h.patients,
      hours: h.hours,
      intervalSeconds: s.intervalSeconds,
      messagesPerRequest: s.messagesPerRequest,
      recordsPerInvocation: s.recordsPerInvocation,
      logLevel: stack.functions.grade.powertoolsLogLevel,
      tickPatients: s.patients,
    });
    const priced = { 'on-demand': price(s, m, stack, 'on-demand'), provisioned: price(s, m, stack, 'provisioned') };
    const recommended = priced[RECOMMENDED[s.key]!];
    console.log(`\n-- (${s.key}) ${s.title}: ${Math.round(recommended.messagesPerMonth).toLocaleString('en-US')} messages and ${Math.round(recommended.patientDaysPerMonth).toLocaleString('en-US')} patient-days a month`);
    console.log(
      `   gateway: ${s.messagesPerRequest} message(s) a request; grade batches of ${s.recordsPerInvocation} record(s); ` +
        `measured over ${m.messages.toLocaleString('en-US')} messages (${h.patients} patients, ${h.hours} h): ` +
        `per message ${recommended.perMessage.read.toFixed(2)} read and ${recommended.perMessage.write.toFixed(2)} write units, ` +
        `${Object.entries(recommended.perMessage.requests).map(([k, v]) => `${v.toFixed(2)} ${k}`).join(', ')}, ${Math.round(recommended.perMessage.logBytes)} log bytes; ` +
        `state item ${Math.round(m.stateItem.mean)} B (largest ${m.stateItem.max} B); ${m.notifications} grade changes paged ${m.pages} pages`,
    );
    console.log(`   capacity: ${RECOMMENDED[s.key]} (the README's recommendation at this load)`);
    printLines(recommended);
    const top = drivers(recommended).slice(0, 3);
    console.log(`   top drivers (month 1): ${top.map((d) => `${d.driver} ${usd(d.cost)} (${Math.round(d.share * 100)} %)`).join('; ')}`);
    const other = priced[RECOMMENDED[s.key] === 'on-demand' ? 'provisioned' : 'on-demand'];
    console.log(
      `   side by side, month 1 per 1,000 patient-days: on-demand ${usd(priced['on-demand'].perKPatientDays1)}, provisioned ${usd(priced.provisioned.perKPatientDays1)} ` +
        `(month 12: ${usd(priced['on-demand'].perKPatientDays12)}, ${usd(priced.provisioned.perKPatientDays12)})`,
    );
    void other;
    const month1Met = recommended.perKPatientDays1 <= s.target;
    const growthMet = recommended.month12 <= 2 * recommended.month1;
    console.log(`   target month 1 <= ${usd(s.target)} per 1,000 patient-days: ${usd(recommended.perKPatientDays1)}, ${month1Met ? 'met' : 'NOT MET'}`);
    console.log(`   target month 12 <= 2 x month 1: ${(recommended.month12 / recommended.month1).toFixed(2)} x, ${growthMet ? 'met' : 'NOT MET'}`);
    met &&= month1Met && growthMet;
    (out.scenarios as Record<string, unknown>)[s.key] = { scenario: s, capacity: RECOMMENDED[s.key], priced, measured: { messages: m.messages, stateItem: m.stateItem, pages: m.pages, notifications: m.notifications } };
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
