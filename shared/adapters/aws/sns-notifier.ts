// Notifier on SNS: one Publish per page, with the attributes that the teams' subscription filter policies match
// (condition, grade, teams, ward) and the notificationId, so that a receiver can drop a rare repeat.
// Email and SMS subscribers get readable text; HTTPS (and any other) subscribers get the page as the JSON event
// `crs replay` prints. Pages carry the patient id and bed, never a name.
import { PublishCommand, type MessageAttributeValue, type SNSClient } from '@aws-sdk/client-sns';
import { notificationEvent } from '../../domain/events.ts';
import type { Notification } from '../../domain/page.ts';
import type { Notifier } from '../../ports.ts';

const SUBJECT_MAX = 100;
const SMS_MAX = 1400;

export function pageAttributes(n: Notification): Record<string, MessageAttributeValue> {
  const attributes: Record<string, MessageAttributeValue> = {
    condition: { DataType: 'String', StringValue: n.condition },
    grade: { DataType: 'Number', StringValue: String(n.toGrade) },
    teams: { DataType: 'String.Array', StringValue: JSON.stringify(n.teams) },
    kind: { DataType: 'String', StringValue: n.kind },
    notificationId: { DataType: 'String', StringValue: n.notificationId },
  };
  // SNS refuses empty attribute values: a patient with no ward on record simply has no ward attribute.
  if (n.ward) attributes.ward = { DataType: 'String', StringValue: n.ward };
  return attributes;
}

/** Email subject: one line of ASCII, at most 100 characters. */
export function pageSubject(n: Notification): string {
  const where = [n.patientId, n.bed ? `bed ${n.bed}` : null].filter(Boolean).join(' ');
  const subject = `PROVISIONAL ${n.condition.toUpperCase()} grade ${n.toGrade} (was ${n.fromGrade}) ${where}`;
  return subject.replace(/[^\x20-\x7e]/g, '?').slice(0, SUBJECT_MAX);
}

export function pageText(n: Notification): string {
  return [
    n.summary,
    '',
    'Next steps (decision support; confirm against the local protocol):',
    ...n.actions.map((a) => `- ${a}`),
    '',
    `Teams: ${n.teams.join(', ')}. Notification ${n.notificationId}.`,
  ].join('\n');
}

export function pageMessage(n: Notification): string {
  return JSON.stringify({
    default: JSON.stringify(notificationEvent(n)),
    email: pageText(n),
    sms: n.summary.length > SMS_MAX ? `${n.summary.slice(0, SMS_MAX - 3)}...` : n.summary,
  });
}

export class SnsNotifier implements Notifier {
  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
  ) {}

  async publish(n: Notification): Promise<void> {
    await this.client.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        MessageStructure: 'json',
        Message: pageMessage(n),
        Subject: pageSubject(n),
        MessageAttributes: pageAttributes(n),
      }),
    );
  }
}
