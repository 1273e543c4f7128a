// Courses where the episode start moves after fevers have arrived (an enrolment after the fevers, a re-infusion,
// an infusion time corrected), which the rules oracle found graded CRS 0 where crs-rules.md v1.1 gives 2: the
// fever waiver (a fever of the episode, then a fever-masking medication) held in the episode the start settles
// on, but its fever had left the fever window or was covered by a later, higher one. Each course ends at ASTCT
// CRS 2 (afebrile, two low MAP readings, waiver). Times are minutes after T0 (2026-01-10T08:00:00Z, "day 1").
// F, from a mutation run (2026-12-06), has the start move before a masking medication charted late: exact by
// docs/grading-rules.md section 4, so inside the oracle tests' guarantees, where the small feverHistory pushes
// the new episode's first fever out.
import type { DeviceMessage } from '#domain/contract.ts';
import { enrol, msg } from '#test/support/messages.ts';

const P = 'WAIVER';
const DAY = 24 * 60;
const temp = (m: number, temperatureC: number) => msg(P, m, { vitals: { temperatureC } });
const lowMap = (m: number) => msg(P, m, { vitals: { temperatureC: 37, meanArterialPressure: 60 } });
const tocilizumab = (m: number) => msg(P, m, { medications: [{ drug: 'tocilizumab' }] });
const infused = (observed: number, at: string) => enrol(P, observed, { infusedAt: `2026-01-10T${at}:00Z` });

export const episodeStartMoves: { name: string; messages: DeviceMessage[] }[] = [
  {
    name: 'B: an enrolment arrives after fevers observed before and after its infusion, the medication last',
    messages: [
      temp(1, 38.0),
      temp(61, 38.0),
      lowMap(DAY + 62),
      infused(DAY + 62, '09:00'),
      lowMap(DAY + 63),
      tocilizumab(64),
    ],
  },
  {
    name: 'C: a re-infusion charted the next day, after the fever of the new episode and the medication',
    messages: [
      infused(-60, '08:00'),
      temp(1, 38.0),
      temp(62, 38.0),
      tocilizumab(66),
      lowMap(DAY + 120),
      lowMap(DAY + 125),
      infused(DAY + 130, '09:00'),
    ],
  },
  {
    name: 'D: the infusion time corrected later, past the first fever, the masked one covered by a higher one',
    messages: [
      infused(-120, '06:00'),
      temp(-60, 38.0),
      temp(60, 38.2),
      tocilizumab(90),
      temp(120, 38.5),
      infused(150, '08:00'),
      lowMap(DAY + 180),
      lowMap(DAY + 185),
    ],
  },
  {
    name: 'E: the infusion time changed 08:00 -> 09:00 -> 08:00 in a long course, the fever long out of the window',
    messages: [
      infused(-60, '08:00'),
      temp(30, 38.5),
      tocilizumab(45),
      ...Array.from({ length: 27 }, (_, h) => temp(120 + 60 * h, 37.0)),
      infused(DAY + 240, '09:00'),
      lowMap(DAY + 250),
      lowMap(DAY + 255),
      infused(DAY + 260, '08:00'),
      lowMap(DAY + 270),
    ],
  },
  {
    name: 'F: a re-infusion before the new fevers, then a medication charted late after them (the old fever no onset)',
    messages: [
      infused(-120, '06:00'),
      temp(-60, 38.5),
      infused(-30, '08:00'),
      temp(60, 39.0),
      temp(120, 39.0),
      temp(180, 39.0),
      temp(240, 39.0),
      tocilizumab(90),
      lowMap(DAY + 240),
      lowMap(DAY + 245),
    ],
  },
];
