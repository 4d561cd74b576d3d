/// <reference lib="dom" />
/**
 * The filter bar: read and fill the form, validate as the server does (errors
 * next to their field), apply a filter to the view, and keep the interface and
 * node choices in step with what the API reports.
 */
import { $, h, toast } from '../dom.js';
import { type FilterField, type FlowFilter, FILTER_FIELDS, normalizeFilter, validateFilter } from '../query.js';
import { saveHash, state } from '../state.js';
import { restartFlows } from './flows.js';

export const form = $<HTMLFormElement>('#filters');

function formFilter(): FlowFilter {
  const fd = new FormData(form);
  const raw: Partial<FlowFilter> = {};
  for (const k of FILTER_FIELDS) raw[k] = String(fd.get(k) ?? '');
  return normalizeFilter(raw);
}

export function fillForm(f: FlowFilter): void {
  syncIfaceOptions();
  syncNodeOptions();
  for (const k of FILTER_FIELDS) {
    const el = form.elements.namedItem(k) as HTMLInputElement | HTMLSelectElement | null;
    if (el) el.value = f[k];
  }
  showErrors({});
}

function showErrors(errors: Partial<Record<FilterField, string>>): void {
  for (const k of FILTER_FIELDS) {
    const el = form.elements.namedItem(k) as HTMLInputElement | null;
    if (!el) continue;
    const msg = errors[k] ?? '';
    if (msg) el.setAttribute('aria-invalid', 'true');
    else el.removeAttribute('aria-invalid');
    const small = el.parentElement?.querySelector('small.err');
    if (small) small.textContent = msg;
  }
}

export function applyFilter(f: FlowFilter, msg?: string, scroll = false): void {
  const errors = validateFilter(f);
  if (Object.keys(errors).length) {
    showErrors(errors);
    const first = FILTER_FIELDS.find((k) => errors[k]);
    if (first) (form.elements.namedItem(first) as HTMLElement | null)?.focus();
    return;
  }
  state.view = { ...state.view, filter: f };
  fillForm(f);
  saveHash();
  void restartFlows();
  if (msg) toast(msg);
  if (scroll) $('#flows').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

export function syncIfaceOptions(): void {
  const sel = $<HTMLSelectElement>('#filters select[name="iface"]');
  const names = [...new Set(state.ifaces.map((i) => i.iface))].sort();
  const cur = state.view.filter.iface;
  if (cur && !names.includes(cur)) names.push(cur);
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join() === names.join()) return;
  sel.replaceChildren(h('option', { value: '' }, 'any'), ...names.map((n) => h('option', { value: n }, n)));
  sel.value = cur;
}

export function syncNodeOptions(): void {
  const sel = $<HTMLSelectElement>('#filters select[name="node"]');
  const names = (state.status?.nodes ?? []).map((n) => n.node).sort();
  const cur = state.view.filter.node;
  if (cur && !names.includes(cur)) names.push(cur);
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join() === names.join()) return;
  sel.replaceChildren(h('option', { value: '' }, 'any'), ...names.map((n) => h('option', { value: n }, n)));
  sel.value = cur;
}

export function installFilterBar(): void {
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    applyFilter(formFilter());
  });
  for (const sel of form.querySelectorAll('select')) sel.addEventListener('change', () => applyFilter(formFilter()));
  form.addEventListener('input', (ev) => {
    // clear a field's error as soon as it is edited
    const el = ev.target as HTMLInputElement;
    if (el.getAttribute('aria-invalid') === 'true') {
      el.removeAttribute('aria-invalid');
      const small = el.parentElement?.querySelector('small.err');
      if (small) small.textContent = '';
    }
  });
  $('#clear-btn').addEventListener('click', () => applyFilter(normalizeFilter({}), 'Filters cleared'));
}
