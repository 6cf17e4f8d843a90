/**
 * The dashboard page: one HTML document, its script and style, served by the handler. The
 * chart is uPlot (from npm, served from the handler: no CDN). The script is plain ES2020 in a
 * string so the page needs no build step; it re-renders from each server-sent snapshot.
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pgpulse dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="assets/uplot.min.css">
<link rel="stylesheet" href="assets/dashboard.css">
</head>
<body>
<header><h1>pgpulse</h1><span id="status" class="muted">connecting…</span></header>
<main>
  <section class="wide"><h2>Nodes</h2><div id="nodes" class="cards"></div></section>
  <section class="wide"><h2>Replica lag (ms)</h2><div id="lag-chart"></div></section>
  <section><h2>Alerts</h2><div id="alerts"></div></section>
  <section><h2>Routing</h2><div id="routing"></div><div id="cache"></div></section>
  <section class="wide"><h2>Slow queries</h2><div id="slow"></div></section>
  <section><h2>Index advice</h2><div id="advice"></div></section>
  <section><h2>Partitions</h2><div id="partitions"></div></section>
</main>
<script src="assets/uplot.iife.min.js"></script>
<script src="assets/dashboard.js"></script>
</body>
</html>
`;

export const PAGE_CSS = `
:root { color-scheme: light; --fg: #1d2430; --muted: #6b7585; --line: #e2e6ec; --ok: #13824a;
  --warn: #b26a00; --bad: #c2252c; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; gap: 16px; align-items: baseline; padding: 12px 20px; background: #fff;
  border-bottom: 1px solid var(--line); }
h1 { margin: 0; font-size: 20px; } h2 { margin: 0 0 8px; font-size: 15px; }
main { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; padding: 14px 20px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
.cards { display: flex; gap: 10px; flex-wrap: wrap; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; min-width: 190px; }
.card .name { font-weight: 600; } .muted { color: var(--muted); }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
.pill { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 12px; border: 1px solid currentColor; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: 3px 6px;
  border-bottom: 1px solid var(--line); vertical-align: top; } th { font-weight: 600; color: var(--muted); }
code, pre { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { white-space: pre-wrap; margin: 0; }
.bar { height: 8px; background: #dfe7f3; border-radius: 4px; overflow: hidden; }
.bar > span { display: block; height: 100%; background: #3d7bd9; }
ul.tree { margin: 4px 0 4px 0; padding-left: 16px; } ul.tree li { list-style: "└ "; }
details summary { cursor: pointer; }
`;

export const PAGE_JS = `(function () {
  'use strict';
  var token = new URLSearchParams(location.search).get('token');
  var q = token ? '?token=' + encodeURIComponent(token) : '';
  var HISTORY = 300;
  var times = [];
  var series = {};
  var chart = null;
  var chartNames = [];
  var COLORS = ['#3d7bd9', '#d9743d', '#2ea36b', '#9a4dd1', '#c2252c'];

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === 'class') e.className = attrs[k]; else if (k === 'text') e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c != null) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function replace(id, node) { var box = document.getElementById(id); box.replaceChildren(node); }
  function empty(text) { return el('div', { class: 'muted', text: text }); }
  function fmt(n) { return n == null ? '?' : Math.round(n).toLocaleString('en-US'); }

  function renderNodes(nodes) {
    replace('nodes', el('div', { class: 'cards' }, nodes.map(function (n) {
      var state = !n.up ? ['bad', 'down' + (n.downReason ? ' (' + n.downReason + ')' : '')]
        : n.lagging ? ['warn', 'lagging'] : ['ok', 'up'];
      var use = n.pool.max ? Math.min(100, Math.round(100 * n.pool.inUse / n.pool.max)) : 0;
      return el('div', { class: 'card', 'data-node': n.name }, [
        el('div', {}, [el('span', { class: 'name', text: n.name }), ' ', el('span', { class: 'muted', text: n.role })]),
        el('div', {}, [el('span', { class: 'pill ' + state[0], 'data-state': state[1], text: state[1] }),
          ' breaker ', el('span', { class: n.breaker === 'closed' ? 'ok' : 'bad', text: n.breaker })]),
        n.role === 'replica' ? el('div', {}, ['lag ', el('b', { class: 'lag', 'data-lag': String(n.lagMs), text: fmt(n.lagMs) + ' ms' })]) : null,
        el('div', { class: 'muted', text: 'pool ' + n.pool.inUse + '/' + n.pool.max + ' in use, ' + n.pool.waiting + ' waiting · ' + fmt(n.queries) + ' statements' }),
        el('div', { class: 'bar' }, [el('span', { style: 'width:' + use + '%' })]),
      ]);
    })));
  }

  function renderChart(snapshot) {
    var replicas = snapshot.nodes.filter(function (n) { return n.role === 'replica'; });
    times.push(snapshot.at / 1000);
    replicas.forEach(function (n) { (series[n.name] = series[n.name] || new Array(times.length - 1).fill(null)).push(n.lagMs); });
    Object.keys(series).forEach(function (name) { if (series[name].length < times.length) series[name].push(null); });
    if (times.length > HISTORY) { times.shift(); Object.keys(series).forEach(function (k) { series[k].shift(); }); }
    var names = Object.keys(series);
    var data = [times].concat(names.map(function (k) { return series[k]; }));
    var box = document.getElementById('lag-chart');
    if (!chart || names.join() !== chartNames.join()) {
      if (chart) chart.destroy();
      chartNames = names;
      chart = new uPlot({
        width: Math.max(300, box.clientWidth - 4), height: 200,
        scales: { y: { range: function (u, min, max) { return [0, Math.max(100, max * 1.1)]; } } },
        series: [{}].concat(names.map(function (k, i) { return { label: k, stroke: COLORS[i % COLORS.length], width: 2 }; })),
        axes: [{}, { label: 'ms' }],
      }, data, box);
    } else {
      chart.setData(data);
    }
  }

  function renderAlerts(alerts) {
    var rows = alerts.firing.map(function (a) {
      return el('tr', { class: 'alert', 'data-alert': a.id }, [el('td', {}, [el('span', { class: 'pill bad', text: 'firing' })]),
        el('td', { text: a.message }), el('td', { class: 'muted', text: new Date(a.since).toLocaleTimeString() })]);
    });
    var resolved = alerts.recent.filter(function (a) { return a.state === 'resolved'; }).slice(-5).reverse().map(function (a) {
      return el('tr', {}, [el('td', {}, [el('span', { class: 'pill ok', text: 'resolved' })]), el('td', { class: 'muted', text: a.message }),
        el('td', { class: 'muted', text: new Date(a.resolvedAt).toLocaleTimeString() })]);
    });
    replace('alerts', rows.length + resolved.length ? el('table', {}, rows.concat(resolved)) : empty('no alert has fired'));
  }

  function renderRouting(routing) {
    var entries = Object.keys(routing).map(function (k) { return [k, routing[k]]; }).sort(function (a, b) { return b[1] - a[1]; });
    var total = entries.reduce(function (s, e) { return s + e[1]; }, 0);
    replace('routing', entries.length ? el('table', {}, entries.map(function (e) {
      var pct = total ? Math.round(100 * e[1] / total) : 0;
      return el('tr', {}, [el('td', {}, [el('code', { text: e[0] })]), el('td', { text: fmt(e[1]) }),
        el('td', { style: 'width:40%' }, [el('div', { class: 'bar' }, [el('span', { style: 'width:' + pct + '%' })])]), el('td', { class: 'muted', text: pct + ' %' })]);
    })) : empty('no statement routed yet'));
  }

  function renderCache(cache) {
    if (!cache) { replace('cache', empty('')); return; }
    var ratio = Math.round(1000 * cache.hitRatio) / 10;
    replace('cache', el('div', { style: 'margin-top:8px' }, [el('b', { text: 'Query cache ' }),
      el('span', { 'data-hit-ratio': String(cache.hitRatio), text: ratio + ' % hits' }),
      el('span', { class: 'muted', text: ' · ' + fmt(cache.hits) + ' hits, ' + fmt(cache.misses) + ' misses, ' +
        fmt(cache.entries) + ' entries, ' + fmt(cache.bytes / 1024) + ' KiB, ' + fmt(cache.invalidations) + ' invalidated' })]));
  }

  function tree(node) {
    var label = node.type + (node.relation ? ' on ' + node.relation : '') + (node.index ? ' using ' + node.index : '') +
      (node.cost != null ? '  (cost ' + node.cost + ', rows ' + node.rows + ')' : '');
    return el('li', {}, [el('code', { text: label }), node.children.length ? el('ul', { class: 'tree' }, node.children.map(tree)) : null]);
  }

  var openSlow = new Set();
  function renderSlow(list) {
    document.querySelectorAll('#slow details.slow').forEach(function (d) {
      if (d.open) openSlow.add(d.getAttribute('data-fp')); else openSlow.delete(d.getAttribute('data-fp'));
    });
    replace('slow', list.length ? el('div', {}, list.map(function (s) {
      var attrs = { class: 'slow', 'data-fp': s.fingerprint };
      if (openSlow.has(s.fingerprint)) attrs.open = '';
      return el('details', attrs, [
        el('summary', {}, [el('b', { text: fmt(s.meanMs) + ' ms' }), ' mean · ' + s.calls + ' calls · p95 ' + fmt(s.p95Ms) + ' ms · ', el('code', { text: s.query.slice(0, 120) })]),
        s.plan ? el('ul', { class: 'tree plan' }, [tree(s.plan)]) : empty('plan not captured yet'),
        s.findings.length ? el('ul', {}, s.findings.map(function (f) { return el('li', {}, [el('span', { class: f.severity === 'critical' ? 'bad' : 'warn', text: f.kind }), ' ' + f.message + ' — ' + f.suggestion]); })) : null,
      ]);
    })) : empty('no statement over the slow-query threshold'));
  }

  function renderAdvice(list) {
    replace('advice', list.length ? el('table', {}, list.map(function (a) {
      return el('tr', {}, [el('td', { text: 'P' + a.priority }), el('td', {}, [el('pre', { text: a.ddl }), el('div', { class: 'muted', text: a.reason })])]);
    })) : empty('no index advice'));
  }

  function renderPartitions(list) {
    replace('partitions', list.length ? el('div', {}, list.map(function (p) {
      return el('div', {}, [el('b', { text: p.schema + '.' + p.table }), el('span', { class: 'muted', text: ' ' + p.key + ' · ' + p.partitions.length + ' partitions · ' + fmt(p.totalBytes / 1024) + ' kB' }),
        el('table', {}, p.partitions.slice(-8).map(function (c) { return el('tr', {}, [el('td', { text: c.name }), el('td', { class: 'muted', text: c.bound }), el('td', { text: fmt(c.rows) + ' rows' }), el('td', { text: fmt(c.bytes / 1024) + ' kB' })]); }))]);
    })) : empty('no partitioned table'));
  }

  function render(snapshot) {
    renderNodes(snapshot.nodes);
    renderChart(snapshot);
    renderAlerts(snapshot.alerts);
    renderRouting(snapshot.routing);
    renderCache(snapshot.cache);
    renderSlow(snapshot.slowQueries);
    renderAdvice(snapshot.indexAdvice);
    renderPartitions(snapshot.partitions);
    var status = document.getElementById('status');
    status.textContent = 'live · ' + new Date(snapshot.at).toLocaleTimeString();
    status.setAttribute('data-at', String(snapshot.at));
  }

  var source = new EventSource('events' + q);
  source.addEventListener('snapshot', function (e) { render(JSON.parse(e.data)); });
  source.onerror = function () { document.getElementById('status').textContent = 'reconnecting…'; };
})();
`;
