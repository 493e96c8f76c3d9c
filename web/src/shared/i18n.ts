// A tiny i18n helper shared by the customer chat and the agent console.
// Each app keeps its own string tables (one object per language, the English
// one defining the keys); this file only picks the language and fills in
// `{name}` placeholders.

export type Lang = 'en' | 'zh';

/** A translation table with exactly the keys of `T`. */
export type Table<T> = { [K in keyof T]: string };

export type Translate<K extends string> = (key: K, vars?: Record<string, string | number>) => string;

/** Maps any locale tag (`zh-CN`, `en_US`, `ZH`) to a supported language. */
export function normalizeLang(tag: string | null | undefined): Lang | null {
  if (!tag) return null;
  const t = tag.trim().toLowerCase();
  if (t.startsWith('zh')) return 'zh';
  if (t.startsWith('en')) return 'en';
  return null;
}

/**
 * The language to use: an explicit setting first, then `?lang=`, then the
 * browser's preference, then English.
 */
export function pickLang(setting?: string | null, query?: string | null, browser?: readonly string[]): Lang {
  const candidates = [setting, query, ...(browser ?? [])];
  for (const c of candidates) {
    const l = normalizeLang(c);
    if (l) return l;
  }
  return 'en';
}

/** Replaces `{name}` placeholders; unknown ones stay as they are. */
export function fill(template: string, vars?: Record<string, string | number>): string {
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
}

export function createTranslator<T extends Record<string, string>>(
  tables: Record<Lang, Table<T>>,
  lang: Lang,
): Translate<Extract<keyof T, string>> {
  const table = tables[lang] ?? tables.en;
  return (key, vars) => fill(table[key] ?? tables.en[key] ?? key, vars);
}
