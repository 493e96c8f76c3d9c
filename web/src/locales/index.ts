// The customer chat's string tables and a ready translator factory.
import { createTranslator, type Lang, type Translate } from '../shared/i18n';
import { en, type StringKey } from './en';
import { zh } from './zh';

export type { StringKey };
export type T = Translate<StringKey>;

export const tables = { en, zh };

export function translator(lang: Lang): T {
  return createTranslator<typeof en>(tables, lang);
}
