// The agent console's string tables: the chat's strings (for the bubbles,
// cards and composer it shares with the widget) plus its own.
import { createTranslator, type Lang, type Translate } from '../shared/i18n';
import { agentEn, type AgentStringKey } from './agent-en';
import { agentZh } from './agent-zh';
import { en, type StringKey } from './en';
import { zh } from './zh';

export type AgentKey = AgentStringKey | StringKey;
export type AT = Translate<AgentKey>;

export const agentTables = { en: { ...en, ...agentEn }, zh: { ...zh, ...agentZh } };

export function agentTranslator(lang: Lang): AT {
  return createTranslator<typeof agentTables.en>(agentTables, lang);
}
