// Delivering a page from the outbox: publish once per notificationId, even when the deliverer retries.
// The only window for a repeat is a crash after the publish and before it is recorded; the notificationId
// travels with the page so that a receiver can drop that rare repeat.
import type { Notification } from '#domain/page.ts';
import { iso } from '#domain/time.ts';
import type { Notifier, OutboxLedger } from '#ports';

export async function deliverOnce(
  notification: Notification,
  ledger: OutboxLedger,
  notifier: Notifier,
  nowMs: number,
): Promise<'sent' | 'already-sent'> {
  if (await ledger.isSent(notification.notificationId)) return 'already-sent';
  await notifier.publish(notification);
  await ledger.markSent(notification.notificationId, iso(nowMs));
  return 'sent';
}
