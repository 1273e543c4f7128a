// SnsNotifier against a mocked SNS client: one Publish per page with the attributes the teams' filter policies
// match (condition, grade, teams as String.Array, ward) and the notificationId; readable email and SMS text.
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { deliverOnce } from '../../shared/app/deliver.ts';
import { DEFAULT_CONFIG } from '../../shared/domain/config.ts';
import { notificationEvent } from '../../shared/domain/events.ts';
import type { Notification } from '../../shared/domain/page.ts';
import { reduce } from '../../shared/domain/reducer.ts';
import type { PatientState } from '../../shared/domain/state.ts';
import { SnsNotifier } from '../../shared/adapters/aws/sns-notifier.ts';
import { enrol, msg } from '../support/messages.ts';
import { MemoryLedger } from '../support/port-fakes.ts';

const sns = mockClient(SNSClient);
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:Pages';
const notifier = () => new SnsNotifier(new SNSClient({ region: 'eu-west-1' }), TOPIC);

function pages(patientId: string, enrolment: Record<string, unknown> = {}): Notification[] {
  let state: PatientState | undefined;
  const out: Notification[] = [];
  for (const m of [
    enrol(patientId, -60, enrolment),
    msg(patientId, 0, { vitals: { temperatureC: 38.9 } }),
    msg(patientId, 5, { neuro: { iceScore: 5 } }),
  ]) {
    const step = reduce(state, m, DEFAULT_CONFIG);
    state = step.state;
    if (step.kind === 'applied') out.push(...step.notifications);
  }
  return out;
}

beforeEach(() => {
  sns.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'sns-1' });
});

describe('SnsNotifier', () => {
  it('publishes with the attributes that subscription filter policies match', async () => {
    const [crs, icans] = pages('P-1');
    expect(icans!.teams).toContain('neurology');
    await notifier().publish(icans!);
    const input = sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(input.TopicArn).toBe(TOPIC);
    expect(input.MessageAttributes).toEqual({
      condition: { DataType: 'String', StringValue: 'icans' },
      grade: { DataType: 'Number', StringValue: String(icans!.toGrade) },
      teams: { DataType: 'String.Array', StringValue: JSON.stringify(icans!.teams) },
      kind: { DataType: 'String', StringValue: 'escalation' },
      ward: { DataType: 'String', StringValue: 'H4' },
      notificationId: { DataType: 'String', StringValue: icans!.notificationId },
    });
    expect(JSON.parse(input.MessageAttributes!.teams!.StringValue!)).toEqual(icans!.teams);
    expect(crs!.condition).toBe('crs');
  });

  it('sends HTTPS subscribers the page event as crs replay prints it, and email and SMS readable text', async () => {
    const [page] = pages('P-2');
    await notifier().publish(page!);
    const input = sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(input.MessageStructure).toBe('json');
    const bodies = JSON.parse(input.Message!) as Record<string, string>;
    expect(JSON.parse(bodies.default!)).toEqual(JSON.parse(JSON.stringify(notificationEvent(page!))));
    expect(bodies.email).toContain(page!.summary);
    for (const action of page!.actions) expect(bodies.email).toContain(action);
    expect(bodies.email).toContain(page!.notificationId);
    expect(bodies.sms).toBe(page!.summary);
    expect(input.Subject).toMatch(/^PROVISIONAL CRS grade 1 \(was 0\) P-2 bed H4-P-2$/);
  });

  it('leaves out the ward attribute when no ward is known (SNS refuses empty values), and keeps the subject legal', async () => {
    const [page] = pages('P-3', { ward: undefined, bed: 'Bett-Ü-12'.padEnd(32, 'x') });
    const p = { ...page!, ward: null };
    await notifier().publish(p);
    const input = sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(input.MessageAttributes!.ward).toBeUndefined();
    expect(input.Subject!.length).toBeLessThanOrEqual(100);
    expect(input.Subject).toMatch(/^[\x20-\x7e]+$/);
  });

  it('carries ids, never a name: the page has no name field to fill', () => {
    const [page] = pages('P-4');
    expect(Object.keys(notificationEvent(page!)).some((k) => /name/i.test(k))).toBe(false);
  });

  it('publishes once per notificationId through deliverOnce, even when delivery is retried', async () => {
    const ledger = new MemoryLedger();
    const [page] = pages('P-5');
    expect(await deliverOnce(page!, ledger, notifier(), 0)).toBe('sent');
    expect(await deliverOnce(page!, ledger, notifier(), 1)).toBe('already-sent');
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it('lets a publish failure surface, so the record is retried and not marked sent', async () => {
    sns.on(PublishCommand).rejects(Object.assign(new Error('throttled'), { name: 'ThrottledException' }));
    const ledger = new MemoryLedger();
    const [page] = pages('P-6');
    await expect(deliverOnce(page!, ledger, notifier(), 0)).rejects.toThrow('throttled');
    expect(await ledger.isSent(page!.notificationId)).toBe(false);
  });
});
