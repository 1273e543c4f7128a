// PageSender on SNS: one Publish per page (one team, one level of its ladder), with the attributes the teams'
// subscription filter policies match (teams, team, role, level, ward) and the ids a receiver needs to drop a rare
// repeat (pageId, notificationId). Email and SMS subscribers get readable text with the acknowledge link; HTTPS
// (and any other) subscribers get JSON: for a grade change, the notification event exactly as `crs replay` prints
// it plus a `page` object (the page event every backend emits: team, role, level, the acknowledge link, a sendId
// to drop a repeat by); for a technical alert, the alert and its `page`. Pages carry the patient id and bed, never
// a name.
import { PublishCommand, type MessageAttributeValue, type PublishCommandInput, type SNSClient } from '@aws-sdk/client-sns';
import { notificationEvent } from '../../domain/events.ts';
import { wireId } from '../../domain/ids.ts';
import type { Notification } from '../../domain/page.ts';
import type { Page } from '../../domain/paging.ts';
import { RecordRefused, type PageMessage, type PageSender } from '../../ports.ts';
import { pageEvent, type PageEvent } from '../embedded/pages.ts';

const SUBJECT_MAX = 100;
const SMS_MAX = 1400;

/** The JSON body of a page: the grade change as `crs replay` prints it, or the alert, with its `page`. */
export type PageBody =
  | (ReturnType<typeof notificationEvent> & { page: PageEvent })
  | { type: 'alert'; alertId: string; patientId: string; subject: Page['subject']; kind: Page['kind']; summary: string; page: PageEvent };

/** Where a page's full content and ward come from: the grade change (outbox) and the patient's ward. */
export interface PageContent {
  notification(patientId: string, notificationId: string): Promise<Notification | undefined>;
  ward(patientId: string): Promise<string | null>;
}

export function pageBody(m: PageMessage, n: Notification | undefined, sentAt: number): PageBody {
  const page = pageEvent(m, sentAt);
  if (n) return { ...notificationEvent(n), page };
  const p = m.page;
  return { type: 'alert', alertId: p.notificationId, patientId: p.patientId, subject: p.subject, kind: p.kind, summary: p.summary, page };
}

/** Ten at most: SNS drops a message with more for some subscribers (SQS with raw message delivery). */
export const MAX_ATTRIBUTES = 10;

export function pageAttributes(m: PageMessage, ward: string | null): Record<string, MessageAttributeValue> {
  const p = m.page;
  const s = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });
  const attributes: Record<string, MessageAttributeValue> = {
    // A list of one, so that the filter policies written for whole-notification pages (teams contains T) match.
    teams: { DataType: 'String.Array', StringValue: JSON.stringify([p.team]) },
    team: s(p.team),
    role: s(m.role),
    level: { DataType: 'Number', StringValue: String(p.level) },
    /** crs, icans, stale-feed or spo2. */
    subject: s(p.subject),
    grade: { DataType: 'Number', StringValue: String(p.grade) },
    kind: s(p.kind),
    // Ids as wireId writes them: an id SNS would refuse can never hold up the pages behind it.
    notificationId: s(wireId(p.notificationId)),
    pageId: s(wireId(p.pageId)),
  };
  // SNS refuses empty attribute values: a patient with no ward on record simply has no ward attribute.
  if (ward) attributes.ward = s(ward);
  return attributes;
}

/** Email subject: one line of ASCII, at most 100 characters. */
export function pageSubject(m: PageMessage, n: Notification | undefined): string {
  const p = m.page;
  const escalated = p.level > 0 || p.round > 0 ? `ESCALATED to ${m.role}: ` : '';
  const what = n
    ? `PROVISIONAL ${n.condition.toUpperCase()} grade ${n.toGrade} (was ${n.fromGrade}) ${[n.patientId, n.bed ? `bed ${n.bed}` : null].filter(Boolean).join(' ')}`
    : p.summary;
  return `${escalated}${what}`.replace(/[^\x20-\x7e]/g, '?').slice(0, SUBJECT_MAX);
}

export function pageText(m: PageMessage, n: Notification | undefined): string {
  const p = m.page;
  const lines = [p.summary, ''];
  if (n) lines.push('Next steps (decision support; confirm against the local protocol):', ...n.actions.map((a) => `- ${a}`), '');
  if (p.level > 0 || p.round > 0) lines.push(`Escalated to you (${m.role}): nobody acknowledged in time.`, '');
  if (m.ackUrl) lines.push(`Acknowledge: ${m.ackUrl}`, '');
  lines.push(`Paged: ${m.role} (${p.team}). Page ${p.pageId}.`);
  return lines.join('\n');
}

export function pageSms(m: PageMessage): string {
  const link = m.ackUrl ? `\nAck: ${m.ackUrl}` : '';
  const room = SMS_MAX - link.length;
  const summary = m.page.summary.length > room ? `${m.page.summary.slice(0, room - 3)}...` : m.page.summary;
  return `${summary}${link}`;
}

/** The Publish of one page (n: its grade change, for a grade page; ward: the patient's, if known). */
export function publishInput(topicArn: string, m: PageMessage, n: Notification | undefined, ward: string | null, sentAt: number): PublishCommandInput {
  return {
    TopicArn: topicArn,
    MessageStructure: 'json',
    Message: JSON.stringify({ default: JSON.stringify(pageBody(m, n, sentAt)), email: pageText(m, n), sms: pageSms(m) }),
    Subject: pageSubject(m, n),
    MessageAttributes: pageAttributes(m, ward),
  };
}

/** SNS Publish errors about the message, not about SNS's health. */
export const SNS_REFUSALS = new Set(['InvalidParameterException', 'InvalidParameterValueException', 'ValidationException', 'InvalidMessageContentsException']);

export class SnsPageSender implements PageSender {
  private readonly known = new Map<string, Notification>();

  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
    private readonly content: PageContent,
    private readonly now: () => number = Date.now,
  ) {}

  /** Hands the sender a grade change it is about to page (saves reading it back from the outbox). */
  remember(n: Notification): void {
    this.known.set(n.notificationId, n);
    if (this.known.size > 1000) this.known.delete(this.known.keys().next().value!);
  }

  async send(m: PageMessage): Promise<void> {
    const p = m.page;
    let n: Notification | undefined;
    if (p.subject === 'crs' || p.subject === 'icans') {
      n = this.known.get(p.notificationId) ?? (await this.content.notification(p.patientId, p.notificationId));
      if (!n) throw new Error(`page ${p.pageId}: its grade change is not in the outbox`);
      this.remember(n);
    }
    const ward = n ? n.ward : await this.content.ward(p.patientId);
    try {
      await this.client.send(new PublishCommand(publishInput(this.topicArn, m, n, ward, this.now())));
    } catch (err) {
      // SNS refused this message itself (a parameter, an attribute, the size): sent again it is refused again.
      // Throttling, KMS, 5xx and network errors mean SNS is down for now: retried in order.
      if (SNS_REFUSALS.has((err as Error).name)) throw new RecordRefused(`SNS refused the page (${(err as Error).name})`);
      throw err;
    }
  }
}
