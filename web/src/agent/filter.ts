// Which contacts the list shows: the tab (open or ended) and the search,
// which matches the customer's name, id and last message, ignoring case.
import type { ContactView } from './store';

export type Tab = 'open' | 'ended';

export function inTab(c: Pick<ContactView, 'status'>, tab: Tab): boolean {
  return tab === 'ended' ? c.status === 'ended' : c.status !== 'ended';
}

export function filterContacts(list: ContactView[], query: string, tab: Tab, previewOf: (c: ContactView) => string): ContactView[] {
  const q = query.trim().toLowerCase();
  return list.filter((c) => {
    if (!inTab(c, tab)) return false;
    if (!q) return true;
    return (c.name ?? '').toLowerCase().includes(q) || c.user_id.toLowerCase().includes(q) || previewOf(c).toLowerCase().includes(q);
  });
}
