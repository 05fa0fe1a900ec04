"""Plotly charts that update in place while a run trains.

`st.plotly_chart` gives a chart a new identity whenever its figure changes, so on every live frame the browser
throws the chart away and builds a new one: the charts flicker, and on a two-core machine the rebuilding costs
more CPU than the training it shows. `live_chart(fig, key)` draws the same plotly figure through a tiny
Streamlit component that keeps its <div> and calls `Plotly.react` on it, which redraws only what changed.

A chart scrolled out of view is not redrawn while its figure keeps changing: the newest figure is drawn the moment
the chart comes back into view (an IntersectionObserver), so a student watching the plane does not pay for the
curves below it. Every chart is drawn at least once, and an unchanged figure is never drawn again.

With a class on one server most live pages show a snapshot they have already drawn (a queued or paused run
redraws every few seconds until something happens). `live_chart(build, key, memo_on=(snapshot, *options))` keeps the
figure's JSON of that snapshot: the same snapshot object with the same options is not built again (`memo()`, a
small process-wide cache that holds no snapshot alive).

The component's data is one UTF-8 JSON document in bytes (`payload`), with the figure's JSON written into it as it
is: given a dict, Streamlit would JSON-encode the figure's text again (escaping every quote) and once more, sorted,
to name the element -- twice the figure's size in Python on every frame of every live page. Bytes it forwards as
they are and names by a hash.

plotly.js itself is the copy shipped inside the plotly Python package, served by Streamlit's static file
serving (`server.enableStaticServing = true` in .streamlit/config.toml) from dashboard/static/. When static
serving is off, `live_chart` falls back to `st.plotly_chart`, so pages work either way.
"""
from __future__ import annotations

import base64
import collections
import json
import shutil
import threading
import weakref
from pathlib import Path
from typing import Any, Callable

import numpy as np
import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

from dashboard import charts           # the studio's toolbar and the projector switch
from dashboard import figures

STATIC = Path(__file__).resolve().parent / "static"
PLOTLY_JS = "plotly.min.js"

# A light template matching Streamlit's look (the built-in plotly_chart applies Streamlit's theme; this
# component draws with plotly.js directly).
TEMPLATE = {
    "layout": {
        "font": {"family": '"Source Sans Pro", "Source Sans 3", sans-serif', "color": "#31333F", "size": 12},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "colorway": ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700", "#ffd16a"],
        # automargin: panel grids (figures_compare) keep 10 px margins and let tick labels and axis titles claim
        # the room they need, as Streamlit's own plotly theme does
        "xaxis": {"gridcolor": "#e6eaf1", "zerolinecolor": "#d5dae5", "linecolor": "#d5dae5", "ticks": "",
                  "automargin": True},
        "yaxis": {"gridcolor": "#e6eaf1", "zerolinecolor": "#d5dae5", "linecolor": "#d5dae5", "ticks": "",
                  "automargin": True},
        "hoverlabel": {"font": {"family": '"Source Sans Pro", sans-serif'}},
    }
}
_TEMPLATE_JSON = json.dumps(TEMPLATE, separators=(",", ":"))      # (the parts of every payload that never change)
_SRC_JSON = json.dumps(f"./app/static/{PLOTLY_JS}")

_JS = """
// plotly.py sends numpy arrays as {dtype, bdata (base64), shape}; plotly.js decodes them with a slow base64
// routine on every update, so turn them into typed arrays here with the browser's own atob.
const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
               u2: Uint16Array, i1: Int8Array, u1: Uint8Array};
function typed(v) {
  const T = TYPES[v.dtype];
  if (!T || typeof v.bdata !== 'string') return v;
  const bin = atob(v.bdata);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const flat = new T(bytes.buffer);
  const shape = typeof v.shape === 'string' ? v.shape.split(',').map(Number) : v.shape;
  if (!shape || shape.length < 2) return flat;
  const rows = [], n = shape[1];
  for (let r = 0; r < shape[0]; r++) rows.push(flat.subarray(r * n, (r + 1) * n));
  return rows;
}
function decodeArrays(obj) {
  if (Array.isArray(obj)) { for (let i = 0; i < obj.length; i++) obj[i] = decodeArrays(obj[i]); return obj; }
  if (obj && typeof obj === 'object') {
    if (typeof obj.bdata === 'string' && obj.dtype) return typed(obj);
    for (const k of Object.keys(obj)) obj[k] = decodeArrays(obj[k]);
  }
  return obj;
}

function watch(div) {
  if (div.__ganaeWatched || typeof IntersectionObserver === 'undefined') return;
  div.__ganaeWatched = true;
  new IntersectionObserver((entries) => {
    for (const e of entries) {
      div.__ganaeHidden = !e.isIntersecting;
      if (e.isIntersecting && div.__ganaePending && window.Plotly) {
        const pending = div.__ganaePending;
        div.__ganaePending = null;
        pending();
      }
    }
  }, {rootMargin: '200px'}).observe(div);
}

export default function(component) {
  const { parentElement, data } = component;
  let div = parentElement.querySelector('.ganae-live-chart');
  if (!div) {
    div = document.createElement('div');
    div.className = 'ganae-live-chart';
    div.style.width = '100%';
    parentElement.appendChild(div);
  }
  // data: the bytes of {figure, template, config, src} (livechart.payload). A rerun that sends the same figure
  // (a click elsewhere on the page, a paused run) costs nothing here.
  const stamp = new TextDecoder().decode(data);
  if (div.__ganaeStamp === stamp && div.data) return;
  div.__ganaeStamp = stamp;
  const msg = JSON.parse(stamp);
  const build = () => {
    const fig = decodeArrays(msg.figure);
    fig.layout = fig.layout || {};
    fig.layout.template = msg.template;
    fig.layout.autosize = true;
    div.style.height = (fig.layout.height || 400) + 'px';
    const config = Object.assign({responsive: true, displaylogo: false}, msg.config || {});
    return window.Plotly.react(div, fig.data || [], fig.layout, config);
  };
  // A chart scrolled out of view is not redrawn while a run trains: its newest figure waits and is drawn the
  // moment it comes back into view (the first drawing always happens, so every chart exists with its data).
  watch(div);
  if (div.data && div.__ganaeHidden) { div.__ganaePending = build; return; }
  div.__ganaePending = null;
  if (window.Plotly) { build(); return; }
  if (!window.__ganaePlotly) {
    window.__ganaePlotly = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = msg.src;
      s.onload = resolve;
      s.onerror = () => { window.__ganaePlotly = null; reject(new Error('plotly.js did not load from ' + msg.src)); };
      document.head.appendChild(s);
    });
  }
  window.__ganaePlotly.then(build).catch((e) => { div.textContent = String(e); });
}
"""


@st.cache_resource(show_spinner=False)
def _component():
    return st.components.v2.component("ganae_live_chart", js=_JS, isolate_styles=False)


@st.cache_resource(show_spinner=False)
def _static_ready() -> bool:
    """Static serving is on and dashboard/static/plotly.min.js is the copy from the installed plotly."""
    try:
        if not st.get_option("server.enableStaticServing"):
            return False
        src = Path(plotly.__file__).resolve().parent / "package_data" / PLOTLY_JS
        dst = STATIC / PLOTLY_JS
        if not src.is_file():
            return False
        if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
            STATIC.mkdir(exist_ok=True)
            tmp = dst.with_suffix(".tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)
        return True
    except OSError:
        return False


# ---- what a snapshot has already produced -------------------------------------------------------------------
MEMO_MAX_BYTES = 32 * 2**20          # a safety net: entries leave with their snapshot (see memo)
_memo: collections.OrderedDict[tuple, tuple[weakref.ref, Any, int]] = collections.OrderedDict()
_memo_bytes = 0
_memo_lock = threading.RLock()       # (a snapshot may be freed, and its entry dropped, while this thread holds it)


def _forget(k: tuple, ref: weakref.ref) -> None:
    """A snapshot was freed: drop what it produced (its key's id may be reused by a new object)."""
    global _memo_bytes
    with _memo_lock:
        hit = _memo.get(k)
        if hit is not None and hit[0] is ref:
            del _memo[k]
            _memo_bytes -= hit[2]


def memo(tag: str, snapshot: Any, options: tuple, build: Callable[[], Any], size: Callable[[Any], int] = len) -> Any:
    """`build()`, or what it returned before for this very `snapshot` object with the same `tag` and `options`.

    Snapshots are immutable (a Runner publishes a new object for every change), so the object itself names its
    content. The cache holds only a weak reference to it: when the snapshot is freed (its run published a newer
    one and no page holds it), its entries go with it, so the cache holds about one snapshot's figures per live
    page; MEMO_MAX_BYTES bounds it in any case (the least recently used go first)."""
    global _memo_bytes
    k = (tag, id(snapshot), options)
    with _memo_lock:
        hit = _memo.get(k)
        if hit is not None and hit[0]() is snapshot:
            _memo.move_to_end(k)
            return hit[1]
    value = build()
    n = size(value)
    with _memo_lock:
        old = _memo.pop(k, None)
        if old is not None:
            _memo_bytes -= old[2]
        _memo[k] = (weakref.ref(snapshot, lambda ref, k=k: _forget(k, ref)), value, n)
        _memo_bytes += n
        while _memo_bytes > MEMO_MAX_BYTES and len(_memo) > 1:
            _, (_, _, m) = _memo.popitem(last=False)
            _memo_bytes -= m
    return value


# plotly.js's typed arrays (what plotly.py sends numpy arrays as): numpy dtype -> its short name
_TYPED = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4", "uint32": "u4",
          "float32": "f4", "float64": "f8"}


def _plain(v: Any) -> Any:
    """What json cannot write by itself: a numpy array as plotly.js's typed array ({dtype, bdata, shape}), as
    plotly.py writes it; a numpy number as a number."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "iu" and v.dtype.itemsize == 8 and v.size:          # int64: plotly.js has no such array
            v = v.astype(np.int32) if np.abs(v).max() < 2**31 else v.astype(np.float64)
        name = _TYPED.get(str(v.dtype))
        if name is None or v.size == 0:
            return v.tolist()
        out = {"dtype": name, "bdata": base64.b64encode(np.ascontiguousarray(v)).decode("ascii")}
        if v.ndim > 1:
            out["shape"] = str(v.shape)[1:-1]
        return out
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"{type(v).__name__} cannot be drawn")


def figure_json(fig: go.Figure) -> str:
    """`fig` as plotly.js reads it, less its template (the component supplies a light one): what
    `pio.to_json(fig, validate=False)` writes, from the figure's own data and layout dicts (plotly keeps them as
    dicts) without plotly's deep copy and value-by-value conversion -- on a class's server, py-spy found that copy
    and conversion the largest part of a live redraw (tests/test_charts.py compares the two)."""
    layout = {k: v for k, v in fig._layout.items() if k != "template"}
    data = [{k: v for k, v in trace.items() if k != "uid"} for trace in fig._data]
    try:
        return json.dumps({"data": data, "layout": layout}, default=_plain, separators=(",", ":"), allow_nan=False)
    except ValueError:                     # a NaN outside an array: plotly's own encoder writes it as null
        f = go.Figure(fig)
        f.layout.template = None
        return pio.to_json(f, validate=False)


def payload(figure: str, config: dict[str, Any]) -> bytes:
    """The component's data: {"figure": <the figure's JSON, as it is>, "template", "config", "src"} as UTF-8 bytes
    (see the module's docstring: a dict would have Streamlit encode the figure's text twice more)."""
    return "".join(('{"figure":', figure, ',"template":', _TEMPLATE_JSON,
                    ',"config":', json.dumps(config, sort_keys=True),
                    ',"src":', _SRC_JSON, "}")).encode()


def live_chart(fig: go.Figure | Callable[[], go.Figure], key: str, config: dict[str, Any] | None = None,
               memo_on: tuple | None = None) -> None:
    """Draw `fig` (a figure, or a function that builds it); redrawing with the same key updates the chart in place
    instead of rebuilding it. `memo_on=(snapshot, *options)`: the figure depends on nothing else, so its JSON is
    built once for that snapshot and those options (see `memo`)."""
    def build() -> go.Figure:
        return charts.styled(fig() if callable(fig) else fig)

    def build_spec() -> go.Figure | figures.Spec:
        with figures.specs():              # only drawn here: plain dicts will do (see figures.Spec)
            return build()

    config = charts.config(config)
    if not _static_ready():
        st.plotly_chart(build(), key=key, config=config)
        return

    def to_json() -> str:
        return figure_json(build_spec())

    text = memo(f"chart:{key}", memo_on[0], (*memo_on[1:], charts.projector()), to_json) if memo_on is not None \
        else to_json()
    _component()(data=payload(text, config), key=key)
