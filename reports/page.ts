/**
 * The page every report shares: one self-contained HTML file with chart.js
 * inlined from node_modules, a Content-Security-Policy that forbids every
 * network request (so the file provably works offline), light and dark colours
 * from prefers-color-scheme, and a small script that draws the charts from the
 * JSON block embedded in the page.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { esc, fmtNum, jsonForScript, type NumFormat } from './format.ts';

/** A chart.js configuration as plain data (no functions), plus our extras. */
export interface ChartSpec {
  id: string;
  /** Title of the PNG file written for this chart (`--png`). */
  file: string;
  config: Record<string, unknown>;
}

export type Cell = string | { n: number; f: NumFormat } | { html: string };

export interface Column {
  label: string;
  /** Tooltip explaining the column. */
  title?: string;
}

/** Number cell. */
export const num = (n: number, f: NumFormat = 'int'): Cell => ({ n, f });
/** Pre-built (already escaped) HTML cell. */
export const raw = (html: string): Cell => ({ html });

/** Renders a table; text cells are escaped, number cells carry their exact value in data-v. */
export function table(id: string, cols: Column[], rows: Cell[][], caption?: string): string {
  const head = cols.map((c) => `<th${c.title ? ` title="${esc(c.title)}"` : ''}>${esc(c.label)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c) => {
      if (typeof c === 'string') return `<td>${esc(c)}</td>`;
      if ('html' in c) return `<td>${c.html}</td>`;
      return `<td class="num" data-v="${esc(String(c.n))}">${esc(fmtNum(c.n, c.f))}</td>`;
    }).join('')}</tr>`)
    .join('\n');
  return `<div class="tablewrap"><table id="${esc(id)}">${caption ? `<caption>${esc(caption)}</caption>` : ''}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

/** Key/value list (header facts). Values are escaped unless given as raw(). */
export function dl(items: [string, Cell][]): string {
  return `<dl class="kv">${items
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${typeof v === 'string' ? esc(v) : 'html' in v ? v.html : `<span class="num" data-v="${esc(String(v.n))}">${esc(fmtNum(v.n, v.f))}</span>`}</dd>`)
    .join('')}</dl>`;
}

/** Colours that stay distinguishable on white and on near-black (Tableau 10). */
export const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
export const color = (i: number): string => PALETTE[i % PALETTE.length]!;

/** Collects the charts of one report; `canvas()` returns the markup that holds one. */
export class Charts {
  readonly list: ChartSpec[] = [];
  canvas(file: string, config: Record<string, unknown>, label: string, tall = false): string {
    const id = `chart-${this.list.length + 1}`;
    this.list.push({ id, file, config });
    return `<figure class="chart${tall ? ' tall' : ''}"><canvas id="${id}" role="img" aria-label="${esc(label)}"></canvas></figure>`;
  }
}

let chartJsCache: string | null = null;
/** chart.js's UMD build, read from node_modules at render time (no CDN). */
export function chartJsSource(): string {
  if (chartJsCache === null) {
    const require = createRequire(import.meta.url);
    // The package's "exports" hide dist/ subpaths; resolve the main entry (dist/chart.cjs) and take its sibling.
    const path = join(dirname(require.resolve('chart.js')), 'chart.umd.js');
    chartJsCache = readFileSync(path, 'utf8')
      // The map file is not shipped in the report; a devtools fetch of it would be a network request.
      .replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n')
      // Cannot occur in chart.js today, but would end our <script> element early.
      .replace(/<\/script/gi, '<\\/script');
  }
  return chartJsCache;
}

const CSS = `
:root{color-scheme:light dark;--bg:#ffffff;--fg:#1d232b;--muted:#5b6573;--card:#ffffff;--line:#d8dde4;--grid:rgba(0,0,0,.10);--head:#f3f5f8;--band:rgba(89,161,79,.18);--bandline:#3d8a3a;--ok:#1e7a36;--bad:#b3261e;--warn:#8a5a00;--accent:#4e79a7}
@media (prefers-color-scheme: dark){:root{--bg:#14171c;--fg:#e3e7ec;--muted:#9aa4b1;--card:#1b1f26;--line:#333a45;--grid:rgba(255,255,255,.12);--head:#222832;--band:rgba(120,200,110,.20);--bandline:#8fd487;--ok:#6fd08a;--bad:#ff8a80;--warn:#e8b64c;--accent:#8ab4e8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1200px;margin:0 auto;padding:24px 20px 60px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 8px;padding-top:10px;border-top:1px solid var(--line)}h3{font-size:15px;margin:22px 0 6px}
p.lead,p.note{color:var(--muted);margin:4px 0 12px}
code,pre,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px}
pre{background:var(--head);border:1px solid var(--line);border-radius:6px;padding:8px 10px;overflow:auto;max-height:320px}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:8px 0}.kv dt{color:var(--muted)}.kv dd{margin:0;overflow-wrap:anywhere}
.tablewrap{overflow-x:auto;margin:8px 0 14px}
table{border-collapse:collapse;font-size:13px;min-width:40%}
caption{text-align:left;color:var(--muted);padding:2px 0 4px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:14px;align-items:start}
figure.chart{margin:8px 0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px;height:340px;position:relative}
figure.chart.tall{height:420px}
.grid figure.chart{height:420px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:10px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:150px;background:var(--card)}
.card .big{font-size:22px;font-weight:650;font-variant-numeric:tabular-nums}.card .lbl{color:var(--muted);font-size:12px}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;border:1px solid currentColor;white-space:nowrap}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
small.sub{display:block;color:var(--muted)}
details{margin:8px 0}summary{cursor:pointer;color:var(--accent)}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media print{figure.chart{break-inside:avoid}}
`;

/**
 * Draws every chart listed in the data block. Plugins: a background fill (so
 * PNGs are not transparent), the band randomness alone would give (cisBand) and
 * labelled vertical event markers (cisEvents, labels in the top padding
 * the config reserves) and value labels above bars (cisBarLabels). Number formats are named in the
 * config (`cisFormat`) because JSON cannot carry functions.
 */
const CLIENT = String.raw`(function(){
'use strict';
var data=JSON.parse(document.getElementById('report-data').textContent);
var css=getComputedStyle(document.documentElement);
function v(n){return css.getPropertyValue(n).trim();}
var C={fg:v('--fg'),muted:v('--muted'),grid:v('--grid'),card:v('--card'),band:v('--band'),bandline:v('--bandline')};
Chart.defaults.color=C.fg;Chart.defaults.borderColor=C.grid;Chart.defaults.animation=false;Chart.defaults.maintainAspectRatio=false;
Chart.defaults.font.family='system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif';
function si(x){var a=Math.abs(x),d=1,p='';if(a>=1e12){d=1e12;p='T';}else if(a>=1e9){d=1e9;p='G';}else if(a>=1e6){d=1e6;p='M';}else if(a>=1e3){d=1e3;p='k';}
 var y=x/d;var s=d===1?(Number.isInteger(y)?String(y):y.toFixed(Math.abs(y)<1?2:1)):String(Number(y.toFixed(Math.abs(y)>=100?0:Math.abs(y)>=10?1:2)));return s+(p?' '+p:'');}
var FMT={count:function(x){return si(x);},bytes:function(x){var s=si(x);return s+(/[kMGT]$/.test(s)?'B':' B');},
 percent:function(x){return (Math.round(x*100)/100)+' %';},seconds:function(x){return (Math.round(x*1000)/1000)+' s';},
 ops:function(x){return si(x)+'/s';}};
var bg={id:'cisBackground',beforeDraw:function(ch){var c=ch.ctx;c.save();c.fillStyle=C.card;c.fillRect(0,0,ch.width,ch.height);c.restore();}};
var band={id:'cisBand',beforeDatasetsDraw:function(ch,a,o){if(!o||o.hi==null)return;var y=ch.scales.y,r=ch.chartArea,c=ch.ctx;
 var top=Math.max(r.top,y.getPixelForValue(o.hi)),bot=Math.min(r.bottom,y.getPixelForValue(o.lo));c.save();c.fillStyle=C.band;c.fillRect(r.left,top,r.right-r.left,bot-top);c.restore();},
 afterDatasetsDraw:function(ch,a,o){if(!o||o.hi==null)return;var y=ch.scales.y,r=ch.chartArea,c=ch.ctx;c.save();c.strokeStyle=C.bandline;
 function h(val,w,d){var p=y.getPixelForValue(val);if(p<r.top||p>r.bottom)return;c.lineWidth=w;c.setLineDash(d);c.beginPath();c.moveTo(r.left,p);c.lineTo(r.right,p);c.stroke();}
 h(o.hi,1,[2,3]);h(o.lo,1,[2,3]);h(o.mean,1.5,[7,4]);c.restore();}};
var ev={id:'cisEvents',afterDatasetsDraw:function(ch,a,o){if(!o||!o.items)return;var x=ch.scales.x,r=ch.chartArea,c=ch.ctx,rows=o.rows||3,L=[],hidden=0;c.save();c.font='600 11px '+Chart.defaults.font.family;
 for(var i=0;i<o.items.length;i++){var e=o.items[i];var px=x.getPixelForValue(e.x);if(px<r.left-1||px>r.right+1)continue;
  c.strokeStyle=e.color;c.lineWidth=2;c.setLineDash([5,3]);var w=c.measureText(e.label).width+6,row=-1,tx=0;
  // The first row where the label fits beside its marker (or, near the right edge, left of it) without touching another
  // label; labels used to be drawn over each other and cut off at the edge. One that fits nowhere keeps its line and
  // is counted in a note (the Events table lists every event).
  for(var k2=0;k2<rows&&row<0;k2++){var cand=[px+3,px-3-w];for(var ci=0;ci<cand.length;ci++){var x0=cand[ci];if(x0<2||x0+w>ch.width)continue;
   var ok=true;for(var j=0;j<L.length;j++){var q=L[j];if(q.row===k2&&x0<q.tx+q.w+2&&q.tx<x0+w+2){ok=false;break;}}if(ok){row=k2;tx=x0;break;}}}
  var ty=r.top-4-(rows-Math.max(row,0))*15;c.beginPath();c.moveTo(px,row<0?r.top:ty+12);c.lineTo(px,r.bottom);c.stroke();c.setLineDash([]);
  if(row<0){hidden++;continue;}
  L.push({row:row,tx:tx,ty:ty,w:w,t:e.label,col:e.color});}
 if(hidden){c.font='11px '+Chart.defaults.font.family;var note='+'+hidden+' more event'+(hidden>1?'s':'')+': see the Events table';var nw=c.measureText(note).width+6;
  L.push({row:-1,tx:r.right-nw,ty:r.top+2,w:nw,t:note,col:C.muted});}
 // Labels last, on a backing box, so later markers' lines do not cross them.
 L.forEach(function(l){c.fillStyle=C.card;c.globalAlpha=0.9;c.fillRect(l.tx-2,l.ty-1,l.w,14);c.globalAlpha=1;c.fillStyle=l.col;c.textBaseline='top';c.fillText(l.t,l.tx,l.ty);});
 // Kept on the chart so the browser tests can check the labels neither overlap nor leave the canvas.
 ch.cisEventLabels=L.map(function(l){return {x:l.tx-2,y:l.ty-1,w:l.w,h:14,text:l.t};});ch.cisEventsHidden=hidden;
 c.restore();}};
var bl={id:'cisBarLabels',afterDatasetsDraw:function(ch,a,o){if(!o||!o.labels)return;var m=ch.getDatasetMeta(0),c=ch.ctx;c.save();c.font='600 12px '+Chart.defaults.font.family;c.fillStyle=C.fg;c.textAlign='center';c.textBaseline='bottom';
 if(o.horizontal){c.textAlign='left';c.textBaseline='middle';}
 m.data.forEach(function(el,i){if(o.labels[i]!=null){if(o.horizontal)c.fillText(o.labels[i],el.x+5,el.y);else c.fillText(o.labels[i],el.x,el.y-3);}});c.restore();}};
Chart.register(bg,band,ev,bl);
function fmtFor(name){return FMT[name]||function(x){return String(x);};}
var drawn=0,failed=[];
data.charts.forEach(function(s){try{
 var cfg=s.config,o=cfg.options||(cfg.options={});var sc=o.scales||{};
 Object.keys(sc).forEach(function(k){var f=sc[k].cisFormat;if(f){sc[k].ticks=sc[k].ticks||{};sc[k].ticks.callback=function(x){return fmtFor(f)(x);};}});
 var vf=o.cisValueFormat;o.plugins=o.plugins||{};o.plugins.tooltip=o.plugins.tooltip||{};
 if(vf)o.plugins.tooltip.callbacks={label:function(ctx){var y=ctx.parsed[o.indexAxis==='y'?'x':'y'];return ' '+ctx.dataset.label+': '+fmtFor(vf)(y);}};
 if(o.cisLegendColor){o.plugins.legend=o.plugins.legend||{};o.plugins.legend.labels={generateLabels:function(ch){var l=Chart.defaults.plugins.legend.labels.generateLabels(ch);if(l[0]){l[0].fillStyle=o.cisLegendColor;l[0].strokeStyle=o.cisLegendColor;}return l;}};}
 if(o.plugins.subtitle&&o.plugins.subtitle.display)o.plugins.subtitle.color=C.muted;
 new Chart(document.getElementById(s.id),cfg);drawn++;}catch(e){failed.push(s.id+': '+e);console.error('chart '+s.id+' failed: '+e);}});
document.documentElement.setAttribute('data-charts-drawn',String(drawn));
document.documentElement.setAttribute('data-charts-total',String(data.charts.length));
})();`;

export interface PageParts {
  title: string;
  /** Already-escaped HTML of the report body. */
  body: string;
  charts: ChartSpec[];
  /** The input result, embedded so the report carries its own data. */
  result: unknown;
}

/** Assembles the self-contained page. */
export function page(p: PageParts): string {
  const data = jsonForScript({ charts: p.charts, result: p.result });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="color-scheme" content="light dark">
<title>${esc(p.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${p.body}
<footer>Written by clusterip-sim. This file is self-contained: it makes no network requests; the result it shows is embedded below as JSON (<code>#report-data</code>).</footer>
</main>
<script type="application/json" id="report-data">${data}</script>
<script>${chartJsSource()}</script>
<script>${CLIENT}</script>
</body>
</html>
`;
}
