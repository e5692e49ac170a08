// The page itself: a shell for the picture (page/app.ts draws it) and the styles. No external asset.
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>flatnet</title>
<style>
  body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { padding: 8px 16px; background: #1d2330; color: #fff; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 16px; margin: 0; }
  #status { opacity: .8; }
  main { display: flex; gap: 12px; padding: 12px; align-items: flex-start; }
  #picture { flex: 1; overflow: auto; background: #fff; border: 1px solid #d5d9e0; border-radius: 6px; }
  aside { width: 340px; display: flex; flex-direction: column; gap: 12px; }
  section { background: #fff; border: 1px solid #d5d9e0; border-radius: 6px; padding: 8px 12px; }
  section h2 { font-size: 13px; margin: 0 0 6px; text-transform: uppercase; letter-spacing: .04em; color: #56607a; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: 2px 4px; vertical-align: top; }
  code { font: 12px ui-monospace, monospace; }
  svg text { font: 12px system-ui, sans-serif; }
  svg .title { font-weight: 600; }
  svg .mono { font: 11px ui-monospace, monospace; }
  svg .caption { font-size: 11px; fill: #56607a; text-transform: uppercase; letter-spacing: .05em; }
  svg [data-kind] { cursor: pointer; }
  svg .selected rect { stroke: #d9480f; stroke-width: 2.5; }
  .denied { color: #c92a2a; }
  .muted { color: #8a92a6; }
  #trace-form { display: grid; grid-template-columns: auto 1fr; gap: 4px 8px; align-items: center; }
  #trace-form select, #trace-form input { font: inherit; min-width: 0; }
  #trace-hops { padding-left: 22px; margin: 6px 0; }
  #trace-hops li { margin-bottom: 4px; word-break: break-word; }
  #trace-hops .object, .disagree { font-weight: 600; }
  .disagree { color: #c92a2a; }
  svg .trace-path { stroke: #f76707; stroke-width: 5; stroke-opacity: .55; stroke-linecap: round; }
  svg .trace-link-label { font: 600 12px system-ui, sans-serif; fill: #d9480f; }
  svg .trace-hop circle { fill: #f76707; stroke: #fff; stroke-width: 1.5; }
  svg .trace-hop text { font: 600 10px system-ui, sans-serif; fill: #fff; }
  svg .trace-hop-drop circle { fill: #c92a2a; }
  svg .trace-drop path { stroke: #c92a2a; stroke-width: 4; }
  svg .trace-drop text { font: 700 12px system-ui, sans-serif; fill: #c92a2a; }
</style>
</head>
<body>
<header><h1>flatnet</h1><span id="lab"></span><span id="status">connecting…</span></header>
<main>
  <div id="picture"></div>
  <aside>
    <section id="details"><h2>Details</h2><p class="muted">Click a node, a pod or a Service.</p></section>
    <section id="trace-panel"><h2>Trace</h2>
      <form id="trace-form">
        <label for="trace-from">from</label><select id="trace-from"></select>
        <label for="trace-to">to</label><select id="trace-to"></select>
        <label for="trace-port">port</label><input id="trace-port" placeholder="the target's first port" size="8">
        <label for="trace-proto">protocol</label><select id="trace-proto"><option>tcp</option><option>udp</option><option>icmp</option></select>
        <span></span><button id="trace-run" type="submit">Trace</button>
      </form>
      <p class="muted">A click on a pod, node or Service picks FROM; shift- or alt-click picks TO.</p>
      <div id="trace-result"></div>
    </section>
    <section id="policies"><h2>Policies</h2></section>
  </aside>
</main>
<script src="/app.js"></script>
</body>
</html>
`;
