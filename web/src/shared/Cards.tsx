// Product and order cards. Their fields come from a host page or a customer,
// so every link and image goes through safeHttpUrl and text stays text.
import type { ComponentChildren } from 'preact';
import { safeHttpUrl } from './url';
import type { T } from '../locales';

const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

function Link({ href, children, className }: { href: string | null; children: ComponentChildren; className?: string }) {
  return href ? (
    <a class={className} href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  ) : (
    <span class={className}>{children}</span>
  );
}

export function ProductCard({ ext, url, fallback, t }: { ext: Record<string, unknown>; url?: string; fallback: string; t: T }) {
  const href = safeHttpUrl(ext.url) ?? safeHttpUrl(url);
  const img = safeHttpUrl(ext.image);
  const title = str(ext.title) || fallback;
  const price = str(ext.price);
  const desc = str(ext.description);
  return (
    <div class="card" aria-label={t('product')}>
      {img ? <img class="card-img" src={img} alt="" loading="lazy" /> : null}
      <div class="card-body">
        <Link href={href} className="card-title">
          {title}
        </Link>
        {desc ? <div class="card-desc">{desc}</div> : null}
        {price ? <div class="card-price">{price}</div> : null}
        {!href && (str(ext.url) || url) ? <div class="card-url">{str(ext.url) || url}</div> : null}
      </div>
    </div>
  );
}

export function OrderCard({ ext, url, fallback, t }: { ext: Record<string, unknown>; url?: string; fallback: string; t: T }) {
  const href = safeHttpUrl(ext.url) ?? safeHttpUrl(url);
  const img = safeHttpUrl(ext.image);
  const title = str(ext.title) || fallback;
  const items = Array.isArray(ext.items) ? ext.items : null;
  const count = items ? items.length : typeof ext.items === 'number' ? ext.items : 0;
  return (
    <div class="card order" aria-label={t('order')}>
      <div class="order-head">
        <span>{t('orderNo', { no: str(ext.order_no) })}</span>
        {str(ext.status) ? <span class="order-status">{str(ext.status)}</span> : null}
      </div>
      <div class="card-row">
        {img ? <img class="card-thumb" src={img} alt="" loading="lazy" /> : null}
        <div class="card-body">
          <Link href={href} className="card-title">
            {title}
          </Link>
          {items && items.length ? (
            <div class="card-desc">
              {items
                .slice(0, 3)
                .map((it) => (it && typeof it === 'object' ? str((it as Record<string, unknown>).title ?? (it as Record<string, unknown>).name) : str(it)))
                .filter(Boolean)
                .join(' · ')}
            </div>
          ) : null}
          <div class="order-foot">
            {count ? <span class="card-desc">{t('items', { count })}</span> : <span />}
            {str(ext.price) ? <span class="card-price">{str(ext.price)}</span> : null}
          </div>
        </div>
      </div>
    </div>
  );
}
