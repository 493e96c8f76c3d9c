// What a contact row says about the conversation's newest message.
import type { ChatMessage } from '../lib/types';
import type { AT } from '../locales/agent';
import { fileLabel } from '../shared/Bubble';

const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

export function preview(m: ChatMessage | null | undefined, t: AT): string {
  if (!m) return '';
  if (m.is_revoke) return t('withdrawn');
  const ext = (m.ext ?? {}) as Record<string, unknown>;
  let text: string;
  if (m.style === 'card') text = t('previewCard', { title: str(ext.title) || m.content || '' });
  else if (m.style === 'order') text = t('previewOrder', { title: str(ext.title) || m.content || str(ext.order_no) });
  else if (m.kind === 'picture') text = t('previewImage');
  else if (m.kind === 'video') text = t('previewVideo');
  else if (m.kind === 'audio') text = t('previewAudio');
  else if (m.kind === 'file' || m.kind === 'unknown') text = t('previewFile', { name: fileLabel(m, t('file')) });
  else text = (m.content ?? '').replace(/\s+/g, ' ').trim();
  return m.mine ? t('youPrefix', { text }) : text;
}
