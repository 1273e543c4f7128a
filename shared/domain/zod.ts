// The one way into zod (`import * as z from './zod.ts'`; biome refuses a direct import): zod/mini, the functional API
// on the same validation core as `zod`, whose classic methods bring nearly all of zod into every Lambda bundle (about
// 20 ms more at each cold start). zod/mini ships without messages, so English, classic zod's default, is set here, for
// the config and paging errors that show zod's own texts ("Unrecognized key: ..."): the one locale file, not
// zod/locales and its others. Classic zod also installs a memoizer, for schemas that refer to themselves (z.lazy,
// getters): none of ours do, so none is needed.
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

export * from 'zod/mini';
