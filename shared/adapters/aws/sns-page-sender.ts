// PageSender on SNS: one Publish per page (one team, one level of its ladder), with the attributes the teams'
// subscription filter policies match (teams, team, role, level, ward) and the ids a receiver needs to drop a rare
// repeat (pageId, notificationId). Email subscribers get readable text with the acknowledge link, SMS subscribers
// a short text (the grade, the bed and the link, in at most two SMS segments: the details are behind the link); HTTPS
// (and any other) subscribers get JSON: for a grade change, the notification event exactly as `crs replay` prints
// it plus a `page` object (the page event every backend emits: team, role, level, the acknowledge link, a sendId
// to drop a repeat by); for a technical alert, the alert and its `page`. Pages carry the patient id and bed, never
// a name.
import {
  PublishCommand,
  type MessageAttributeValue,
  type PublishCommandInput,
  type SNSClient,
} from '@aws-sdk/client-sns';
import { notificationEvent } from '#domain/events.ts';
import { wireId } from '#domain/ids.ts';
import { gradeHeadline, type Notification } from '#domain/page.ts';
import { heldText, type Page, type PageTeam } from '#domain/paging.ts';
import { RecordRefused, type PageMessage, type PageSender } from '#ports';
import { pageEvent, type PageEvent } from '#domain/page-event.ts';
import { formatSiteTime } from '#domain/time.ts';
import { wardOfSubject } from '#app/stale-feed.ts';
import { isOutage } from './outage.ts';

/** SNS: a Subject "must be less than 100 characters long" (the Publish API reference). Until 2026-12-07 100. */
const SUBJECT_MAX = 99;
/** The role's share of an escalated subject, so that "PROVISIONAL CRS grade 3 (was 1)" always fits after it. */
const ROLE_MAX = 30;

/** The pages topic's display name: SNS puts it, upper-cased and followed by "> ", before every SMS of the topic. */
export const PAGES_TOPIC_DISPLAY_NAME = 'CRS pages';
const SMS_PREFIX = `${PAGES_TOPIC_DISPLAY_NAME.toUpperCase()}> `;
/** An SMS page fits in this many segments (each costs one SMS): the link, the grade and the bed, nothing more. */
export const SMS_MAX_SEGMENTS = 2;

/** The JSON body of a page: the grade change as `crs replay` prints it, or the alert, with its `page`. */
export type PageBody =
  | (ReturnType<typeof notificationEvent> & { page: PageEvent })
  | {
      type: 'alert';
      alertId: string;
      patientId: string;
      subject: Page['subject'];
      kind: Page['kind'];
      summary: string;
      page: PageEvent;
    };

/** Where a page's full content and ward come from: the grade change (outbox) and the patient's ward. */
export interface PageContent {
  notification(patientId: string, notificationId: string): Promise<Notification | undefined>;
  ward(patientId: string): Promise<string | null>;
}

function pageBody(m: PageMessage, n: Notification | undefined, sentAt: number): PageBody {
  const page = pageEvent(m, sentAt);
  if (n) return { ...notificationEvent(n), page };
  const p = m.page;
  return {
    type: 'alert',
    alertId: p.notificationId,
    patientId: p.patientId,
    subject: p.subject,
    kind: p.kind,
    summary: p.summary,
    page,
  };
}

/** Ten at most: SNS drops a message with more for some subscribers (SQS with raw message delivery). */
export const MAX_ATTRIBUTES = 10;

/**
 * Text in the characters SNS takes in a message and its attributes (#x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD and
 * beyond #xFFFF) and the SDK can encode: anything else becomes U+FFFD. The contract's labels refuse controls, not a
 * lone surrogate (which the SDK cannot encode: URIError) or U+FFFE/U+FFFF, and a ward label reaches the attribute
 * as it was sent.
 */
const snsText = (text: string) =>
  text.replace(
    /[\x00-\x08\x0b\x0c\x0e-\x1f\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
    '\uFFFD',
  );

/** JSON with U+FFFE and U+FFFF escaped (JSON.stringify escapes controls and lone surrogates, not these). */
const snsJson = (value: unknown) =>
  JSON.stringify(value).replace(/[\uFFFE\uFFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);

function pageAttributes(m: PageMessage, ward: string | null): Record<string, MessageAttributeValue> {
  const p = m.page;
  const s = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });
  const attributes: Record<string, MessageAttributeValue> = {
    // A list of one, so that the filter policies written for whole-notification pages (teams contains T) match.
    teams: { DataType: 'String.Array', StringValue: JSON.stringify([p.team]) },
    team: s(p.team),
    role: s(snsText(m.role)),
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
  if (ward) attributes.ward = s(snsText(ward));
  return attributes;
}

/**
 * A page a silence held, sent when the silence ended: the change it is about may be older than the page, and may
 * have been paged before it (a reminder at the level it was held at). The e-mail says when it was held and sent in
 * the words of the acknowledge page (heldText; until 2026-12-07 "Held by a silence, sent now that it has ended").
 */
const AFTER_SILENCE = 'AFTER SILENCE';

/**
 * Email subject: one line of printable ASCII (what SNS takes in a Subject), at most 99 characters; a label's
 * other characters as their nearest ASCII form (asciiText). Until 2026-12-07 each of them was a "?": bed
 * "Süd 3 – Bett 2" read "bed S?d 3 ? Bett 2", ward Hämatologie "H?matologie".
 */
function pageSubject(m: PageMessage, n: Notification | undefined): string {
  const p = m.page;
  // A role is any name the paging config gives: a long one must not push the grade out of the subject.
  // Written in ASCII before it is cut: a letter written as two (ß: ss) must not push the grade out either.
  const name = asciiText(m.role);
  const role = name.length > ROLE_MAX ? `${name.slice(0, ROLE_MAX - 2)}..` : name;
  const escalated =
    m.reason === 'released' ? `${AFTER_SILENCE}: ` : p.level > 0 || p.round > 0 ? `ESCALATED to ${role}: ` : '';
  const what = n
    ? `PROVISIONAL ${gradeHeadline(n)} (was ${n.fromGrade}) ${[n.patientId, n.bed ? `bed ${n.bed}` : null].filter(Boolean).join(' ')}`
    : p.summary;
  return asciiText(`${escalated}${what}`).slice(0, SUBJECT_MAX);
}

/** One line of text: a line break or control character in a bed label (free text) would start a line of its own. */
const oneLine = (text: string) => text.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, ' ');

function pageText(m: PageMessage, n: Notification | undefined, timeZone: string): string {
  const p = m.page;
  const lines = [oneLine(p.summary), ''];
  if (n)
    lines.push(
      'Next steps (decision support; confirm against the local protocol):',
      ...n.actions.map((a) => `- ${a}`),
      '',
    );
  const held = m.reason === 'released' ? heldText(p, timeZone) : undefined;
  if (held) lines.push(held, '');
  if (p.level > 0 || p.round > 0) lines.push(`Escalated to you (${m.role}): nobody acknowledged in time.`, '');
  if (m.ackUrl) lines.push(`Acknowledge: ${m.ackUrl}`, '');
  lines.push(`Paged: ${m.role} (${p.team}). Page ${p.pageId}.`);
  return lines.join('\n');
}

// ---- SMS: GSM 03.38 counts 160 characters in one segment and 153 in each of a longer message's segments; one
// character outside its alphabet sends the whole message as UCS-2 (70, then 67 a segment). The text is kept to
// the basic alphabet (anything else becomes "?"), so its length is its cost.
const GSM_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
/** Characters that take two septets (an escape and the character). */
const GSM_EXTENDED = new Set('^{}\\[~]|€\f');

/**
 * The SMS segments a text takes as SNS sends it (the topic's display-name prefix included). A character is never cut
 * between two parts: an extension character's escape and the character, a surrogate pair (UCS-2) that would start
 * in the last place of a part starts the next. Until 2026-12-07 the parts were the length divided by 153 (67), one
 * too few when such a character fell on the boundary (306 septets in three parts counted as two).
 */
export function smsSegments(text: string): number {
  const chars = [...`${SMS_PREFIX}${text}`];
  const gsm = chars.every((c) => GSM_BASIC.has(c) || GSM_EXTENDED.has(c));
  // Septets (GSM) or UTF-16 code units (UCS-2).
  const size = (c: string) => (gsm ? (GSM_EXTENDED.has(c) ? 2 : 1) : c.length);
  const [whole, part] = gsm ? [160, 153] : [70, 67];
  if (chars.reduce((n, c) => n + size(c), 0) <= whole) return 1;
  let parts = 1;
  let used = 0;
  for (const c of chars) {
    if (used + size(c) > part) {
      parts++;
      used = 0;
    }
    used += size(c);
  }
  return parts;
}

/**
 * The nearest form of characters a text (an SMS, an e-mail subject) cannot carry, where taking off the diacritics
 * (NFD) gives none: dashes, quotes, spaces, a few letters. One table for both texts (transliterated).
 */
const NEAREST: Record<string, string> = {
  ...Object.fromEntries([...'\u2010\u2011\u2012\u2013\u2014\u2015\u2212'].map((c) => [c, '-'])),
  ...Object.fromEntries([...'\u2018\u2019\u201a\u201b\u2032\u00b4`'].map((c) => [c, "'"])),
  ...Object.fromEntries([...'\u201c\u201d\u201e\u201f\u2033'].map((c) => [c, '"'])),
  // Spaces (no-break, thin, ideographic...) and the line breaks and tabs a text on one line reads as spaces.
  ...Object.fromEntries([...'\t\n\v\f\r\u0085\u00a0\u1680\u2028\u2029\u202f\u205f\u3000'].map((c) => [c, ' '])),
  ...Object.fromEntries([...Array(11).keys()].map((i) => [String.fromCharCode(0x2000 + i), ' '])),
  ł: 'l',
  Ł: 'L',
  đ: 'd',
  Đ: 'D',
  ı: 'i',
  // Letters of the GSM alphabet (an SMS keeps them) that ASCII lacks and NFD does not take apart.
  ß: 'ss',
  Æ: 'AE',
  æ: 'ae',
  Ø: 'O',
  ø: 'o',
  Œ: 'OE',
  œ: 'oe',
};

/** A character in the GSM alphabet as it is sent: the basic set, the extension table (two septets each). */
const isGsm = (c: string) => (GSM_BASIC.has(c) || GSM_EXTENDED.has(c)) && !/[\n\r\f]/.test(c);

/**
 * The text in the characters `keep` takes: each of them kept, every other as its nearest form (NEAREST, else the
 * character without its diacritics, NFD: "ô" o) when all of that is kept, "?" for the rest (`中`). The one
 * transliteration of the SMS (gsmText) and the e-mail subject (asciiText).
 */
const transliterated = (text: string, keep: (c: string) => boolean): string =>
  [...text.normalize('NFC')]
    .map((c, i) => {
      if (keep(c)) return c;
      const nearest = NEAREST[c] ?? c.normalize('NFD').replace(/\p{M}/gu, '');
      // A mark on a letter NFC has no single character for (q̇), as an accent the text cannot carry: left off (until
      // 2026-12-07 a "?": "q?"). One that starts the text carries nothing: "?", so that a text is never left empty.
      if (i > 0 && nearest === '' && /^\p{M}+$/u.test(c)) return '';
      return nearest && [...nearest].every(keep) ? nearest : '?';
    })
    .join('');

/**
 * The text in the GSM 7-bit alphabet, on one line: every character of the basic set and the extension table kept
 * (ü, ß, Å, a bracket; smsSegments counts an extension character as two septets, as it is sent), the others as their
 * nearest GSM form (a dash for "–" or "—", ' and " for curly quotes, a space for a no-break space, a letter with a
 * diacritic the alphabet lacks as its base letter: "ł" l, "ô" o, "œ" oe), "?" for the rest.
 * Until 2026-12-07 only printable ASCII was kept: bed "Süd 3 – Bett 2" arrived as "bed S?d 3 ? Bett 2".
 */
const gsmText = (text: string): string => transliterated(text, isGsm);

/** The text in printable ASCII, on one line (an e-mail subject): "Süd 3 – Bett 2" Sud 3 - Bett 2, "ß" ss. */
const isAscii = (c: string) => c >= ' ' && c <= '~';
const asciiText = (text: string): string => transliterated(text, isAscii);

/**
 * The SMS of a page: what it is, for which bed (and patient), and the acknowledge link, where everything else
 * is: in one part when only the words "details at the link" need to go for it, else parts are left out, least
 * needed first, until it fits in SMS_MAX_SEGMENTS; the link is never cut (a base address far longer than the
 * API's own could take a third segment), and a grade page always says
 * the grade is provisional (crs-rules: every page says so).
 */
export function pageSms(m: PageMessage, n?: Notification): string {
  const p = m.page;
  const escalated = m.reason === 'released' ? `${AFTER_SILENCE} ` : p.level > 0 || p.round > 0 ? 'ESCALATED ' : '';
  const link = m.ackUrl ? `Ack: ${m.ackUrl}` : '';
  const fits = (parts: (string | false | null | undefined)[], segments = SMS_MAX_SEGMENTS) => {
    const text = [...parts.filter(Boolean), link].filter(Boolean).join(' ');
    return smsSegments(text) <= segments ? text : undefined;
  };
  if (n) {
    const grade = `${escalated}${gradeHeadline(n)}`;
    const was = `(was ${n.fromGrade})`;
    const bed = n.bed ? `bed ${gsmText(n.bed)}` : null;
    const patient = gsmText(n.patientId);
    const provisional = '- provisional.';
    const candidates = [
      // An informational page (a fall in grade) has no link: its SMS cannot send the reader to one.
      [grade, was, bed, patient, link ? '- provisional, details at the link.' : provisional],
      [grade, was, bed, patient, provisional],
      [grade, was, bed ?? patient, provisional],
      [grade, bed ?? patient, provisional],
    ];
    // One part if everything but the words "details at the link" fits in it (one charge, and a phone never shows
    // the link cut in two); else two, leaving out what is least needed.
    for (const c of candidates.slice(0, 2)) {
      const text = fits(c, 1);
      if (text !== undefined) return text;
    }
    for (const c of candidates) {
      const text = fits(c);
      if (text !== undefined) return text;
    }
    // Even the shortest does not fit: the bed shortened if that is enough; otherwise a third segment, bed kept.
    for (let keep = (bed ?? '').length - 1; keep > 4; keep--) {
      const text = fits([grade, `${bed!.slice(0, keep)}..`, provisional]);
      if (text !== undefined) return text;
    }
    return [grade, bed ?? patient, provisional, link].filter(Boolean).join(' ');
  }
  // A technical alert (a stale feed, a low SpO2): its summary, shortened to fit at a word.
  const summary = `${escalated}${gsmText(p.summary)}`;
  const whole = fits([summary]);
  if (whole !== undefined) return whole;
  for (const cut of wordEnds(summary).reverse()) {
    if (cut < 20) break;
    const text = fits([`${summary.slice(0, cut)}..`]);
    if (text !== undefined) return text;
  }
  return [summary.slice(0, 20), link].filter(Boolean).join(' ');
}

/**
 * Where a shortened summary may end: after a word (its trailing punctuation left out), a time whole with its hour
 * and zone. Until 2026-12-06 it was cut at any character: a ward's no-data SMS ended "cannot be trus..", and a longer
 * list of quiet patients could end "bed H4-1.." (bed H4-17) or "since 2026-12-06 02:4..".
 */
function wordEnds(text: string): number[] {
  const ends: number[] = [];
  for (const m of text.matchAll(/\d{4}-\d\d-\d\d \d\d:\d\d \S+|\S+/g)) {
    const word = m[0].replace(/[ ,;:()]+$/, '');
    if (word) ends.push(m.index + word.length);
  }
  return ends;
}

/**
 * The Publish of one page (n: its grade change, for a grade page; ward: the patient's, if known; timeZone: the
 * site's, config.site.timeZone, for the times the e-mail writes).
 */
export function publishInput(
  topicArn: string,
  m: PageMessage,
  n: Notification | undefined,
  ward: string | null,
  sentAt: number,
  timeZone: string,
): PublishCommandInput {
  return {
    TopicArn: topicArn,
    MessageStructure: 'json',
    // A label's U+FFFE or U+FFFF: escaped in the JSON (read back as it was), replaced in the email's text.
    Message: snsJson({
      default: snsJson(pageBody(m, n, sentAt)),
      email: snsText(pageText(m, n, timeZone)),
      sms: pageSms(m, n),
    }),
    Subject: pageSubject(m, n),
    MessageAttributes: pageAttributes(m, ward),
  };
}

/** A test page (`crs doctor --test-page TEAM`): no patient, never graded, marked as a test everywhere it shows. */
export interface TestPageBody {
  type: 'test-page';
  testId: string;
  team: PageTeam;
  sentAt: string;
  note: string;
}

/**
 * The Publish of a test page to a team: the same topic, attributes and per-protocol texts as a real page, so it
 * reaches exactly the team's endpoints (wards: every ward the team's ward-limited endpoints take, so that each of
 * those gets it once too).
 */
export function testPagePublishInput(
  topicArn: string,
  team: PageTeam,
  wards: string[],
  testId: string,
  sentAt: number,
  /** The site's zone: the email's time is read by people (docs/time-zones.md), the JSON's sentAt stays UTC. */
  timeZone: string,
): PublishCommandInput {
  const at = new Date(sentAt).toISOString();
  const body: TestPageBody = {
    type: 'test-page',
    testId,
    team,
    sentAt: at,
    note: 'A test page from crs doctor: no patient, nothing to do.',
  };
  const s = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });
  return {
    TopicArn: topicArn,
    MessageStructure: 'json',
    Message: JSON.stringify({
      default: JSON.stringify(body),
      email: `TEST page from crs doctor for the ${team} team: no patient, nothing to do.\n\nIf you read this, pages for the ${team} team reach this address.\n\nTest ${testId}, sent ${formatSiteTime(sentAt, timeZone)}.`,
      sms: `TEST page for ${team} from crs doctor: no patient, nothing to do. Pages for ${team} reach this phone.`,
    }),
    Subject: `TEST page for the ${team} team (crs doctor)`,
    MessageAttributes: {
      teams: { DataType: 'String.Array', StringValue: JSON.stringify([team]) },
      team: s(team),
      kind: s('test'),
      subject: s('test'),
      pageId: s(`test|${testId}|${team}`),
      ...(wards.length > 0 ? { ward: { DataType: 'String.Array', StringValue: JSON.stringify(wards) } } : {}),
    },
  };
}

const nameOf = (err: unknown) => (err instanceof Error ? err.name : typeof err);

export class SnsPageSender implements PageSender {
  private readonly known = new Map<string, Notification>();

  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
    private readonly content: PageContent,
    /** The site's zone (config.site.timeZone): the times the e-mail writes. */
    private readonly timeZone: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Hands the sender a grade change it is about to page (saves reading it back from the outbox). */
  remember(n: Notification): void {
    this.known.set(n.notificationId, n);
    if (this.known.size > 1000) this.known.delete(this.known.keys().next().value!);
  }

  async send(m: PageMessage): Promise<void> {
    const input = await this.publishOf(m);
    try {
      await this.client.send(new PublishCommand(input));
    } catch (err) {
      // SNS failing, throttling, or refusing this caller (a key, a permission, the topic), or out of reach: every
      // page would fail alike, so it is down for now (the pager leaves the page to the next tick, in order). Anything
      // else is about this page (a parameter, an attribute, the size; a request the SDK cannot even write): sent again
      // it fails again, so it is refused (parked), and the pages behind it go on. Until 2026-12-05 only four names
      // were refusals, and any other error stopped every patient's ladder at that page, every minute, as "SNS down".
      if (isOutage(err)) throw err;
      throw new RecordRefused(`SNS refused the page (${nameOf(err)})`);
    }
  }

  /**
   * The Publish of a page, with its grade change read back from the outbox when it was not handed over. A page that
   * cannot be written (a record of an older shape, one that does not parse) is refused: it can never be; a read
   * that failed because DynamoDB is down is an outage, and the page waits for it.
   */
  private async publishOf(m: PageMessage): Promise<PublishCommandInput> {
    const p = m.page;
    try {
      let n: Notification | undefined;
      if (p.subject === 'crs' || p.subject === 'icans') {
        n = this.known.get(p.notificationId) ?? (await this.content.notification(p.patientId, p.notificationId));
        // Gone from the outbox (expired, or never there): sent again it is missing again, so it must not hold the
        // pages behind it (parked, like a page SNS refuses).
        if (!n) throw new RecordRefused(`its grade change ${wireId(p.notificationId)} is not in the outbox`);
        this.remember(n);
      }
      // A ward's no-data alert (many monitors quiet at once) is the ward's own: until 2026-12-05 its ward was looked up
      // as a patient's, found nowhere, and left out, so a ward-limited endpoint got each patient's alert but never the
      // ward's, when its network went down.
      const ward = n ? n.ward : (wardOfSubject(p.patientId) ?? (await this.content.ward(p.patientId)));
      return publishInput(this.topicArn, m, n, ward, this.now(), this.timeZone);
    } catch (err) {
      if (err instanceof RecordRefused || isOutage(err)) throw err;
      throw new RecordRefused(`the page cannot be written (${nameOf(err)})`);
    }
  }
}
