// ACKs compared across fronts (MLLP, HTTP, the bridge, the AWS function): each has a control id of its own.

/**
 * An ACK but for its own control id (MSH-10), unique to each ACK since 2026-12-06 (shared/app/hl7v2/ack.ts): the
 * rest is compared byte for byte.
 */
export const sameAck = (ack: string) => ack.replace(/^(MSH(?:\|[^|\r]*){8}\|)[^|\r]*/, '$1(own id)');
