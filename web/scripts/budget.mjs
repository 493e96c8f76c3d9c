// Bundle budgets: widget.js (the loader on every host page), the chat
// page's JS+CSS and the agent console's, gzipped. Exits 1 when one is over.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const gz = (file) => gzipSync(readFileSync(file), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

const budgets = [];

budgets.push({ name: 'widget.js', size: gz(join(dist, 'widget.js')), limit: 5 * 1024 });

// Every script and stylesheet a page references (its own assets only),
// and the chunks its entry imports, which load with it.
function pageAssets(page) {
  const html = readFileSync(join(dist, page), 'utf8');
  const queue = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
  const seen = new Set();
  while (queue.length) {
    const a = queue.shift();
    if (seen.has(a)) continue;
    seen.add(a);
    if (a.endsWith('.js')) {
      const src = readFileSync(join(dist, a), 'utf8');
      for (const m of src.matchAll(/(?:from|import)\s*"\.\/([^"]+\.(?:js|css))"/g)) queue.push(`assets/${m[1]}`);
    }
  }
  if (seen.size === 0) {
    console.error(`budget: ${page} references no assets`);
    process.exit(1);
  }
  let total = 0;
  for (const a of seen) {
    const n = gz(join(dist, a));
    console.log(`  ${page} ${a}: ${kb(n)} gzipped`);
    total += n;
  }
  return total;
}

budgets.push({ name: 'chat page (JS+CSS)', size: pageAssets('chat.html'), limit: 60 * 1024 });
budgets.push({ name: 'agent console (JS+CSS)', size: pageAssets('agent.html'), limit: 120 * 1024 });

let over = false;
for (const b of budgets) {
  const ok = b.size <= b.limit;
  over ||= !ok;
  console.log(`${ok ? 'ok  ' : 'OVER'} ${b.name}: ${kb(b.size)} of ${kb(b.limit)} (${b.size} bytes)`);
}
process.exit(over ? 1 : 0);
