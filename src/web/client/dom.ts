/// <reference lib="dom" />
/**
 * DOM helpers shared by the dashboard's views: element lookup, element
 * building, number cells and summary tiles (human text, exact value on hover),
 * and the toast.
 */

export const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document): T => {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`missing element ${sel}`);
  return el;
};

export type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** A number cell: human text, exact value on hover. */
export function numCell(text: string, title: string): HTMLTableCellElement {
  return h('td', { class: 'num', title }, text);
}

/** Fills one of the summary tiles at the top of the page. */
export function tile(id: string, value: string, valueTitle: string, sub?: string, subTitle?: string, cls?: string): void {
  const t = $(`#${id}`);
  const v = $('[data-v]', t);
  v.textContent = value;
  v.title = valueTitle;
  const s = t.querySelector<HTMLElement>('[data-s]');
  if (s && sub !== undefined) {
    s.textContent = sub || '\u00a0';
    s.title = subTitle ?? '';
  }
  t.classList.remove('ok', 'warn', 'bad');
  if (cls) t.classList.add(cls);
}

let toastTimer: ReturnType<typeof setTimeout> | undefined;
export function toast(msg: string): void {
  const t = $('#toast');
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 2200);
}
