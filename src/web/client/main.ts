/// <reference lib="dom" />
/**
 * flowscope dashboard: wires the views (views/*.ts) to the HTTP API (api.ts)
 * and to the page (index.html). Plain DOM, no framework; every number shown in
 * human units carries its exact value in a title attribute.
 */
import { setApiError } from './alerts.js';
import { toast } from './dom.js';
import { installKeyboard } from './keyboard.js';
import { kick, pollers, startPollers } from './pollers.js';
import { hashToState, stateToHash } from './query.js';
import { multiNode, state } from './state.js';
import { installTheme } from './theme.js';
import { installTokenDialog, syncTokenBtn } from './token.js';
import { fillForm, installFilterBar } from './views/filters.js';
import { installFlowControls, restartFlows } from './views/flows.js';
import { addInterfacesPoller, applyUnit, installUnitSwitch, loadRateHistory } from './views/interfaces.js';
import { addStatusPoller } from './views/status.js';
import { addTopPoller, installTopControls, showTopQuery } from './views/top.js';
import { drawTopChart } from './views/top-chart.js';

function start(): void {
  // an agent keeps its interfaces' history (a relay does not): the charts start with it
  addStatusPoller(() => {
    if (!multiNode()) void loadRateHistory();
  });
  addInterfacesPoller();
  const topPoller = addTopPoller();

  installTheme();
  installTokenDialog((saved) => {
    setApiError('');
    for (const p of pollers) kick(p);
    void restartFlows();
    toast(saved ? 'Token saved' : 'Token forgotten');
  });
  installFilterBar();
  installFlowControls();
  showTopQuery(state.view);
  installTopControls(topPoller);
  installUnitSwitch(drawTopChart);
  installKeyboard();

  syncTokenBtn();
  fillForm(state.view.filter);
  applyUnit();
  startPollers();
  void restartFlows();
  window.addEventListener('hashchange', () => {
    const next = hashToState(location.hash);
    if (stateToHash(next) === stateToHash(state.view)) return;
    state.view = next;
    showTopQuery(next);
    fillForm(next.filter);
    kick(topPoller);
    void restartFlows();
  });
}

start();
