/* cnncalc view: draws what cnncalc computed (the JSON above). No arithmetic on the network
   happens here: every figure, label, shade and formula is cnncalc's; this script decides only
   which nodes show (expanded or collapsed blocks), lays them out with dagre and sorts rows. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("cnncalc-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var FONT = "12px system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
  var SMALL = "11px system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
  var TINY = "10px system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
  var BOLD = "600 " + FONT;
  var measurer = document.createElement("canvas").getContext("2d");

  function textWidth(text, font) {
    measurer.font = font;
    return Math.ceil(measurer.measureText(text).width);
  }

  function el(tag, attrs, parent, text) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) node.setAttribute(key, attrs[key]);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function sv(tag, attrs, parent, text) {
    var node = document.createElementNS(SVG, tag);
    for (var key in attrs || {}) node.setAttribute(key, attrs[key]);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function View(host, data, index) {
    this.data = data;
    this.index = index;
    this.metric = data.shades[0][0];
    this.selected = null;
    this.sort = null;  // [column, +1 | -1]
    this.expanded = {};
    this.zoom = 1;
    var rows = data.rows;
    // ancestors of every row, outermost first
    this.chain = [];
    for (var i = 0; i < rows.length; i++) {
      var p = data.nodes[i].parent;
      this.chain.push(p < 0 ? [] : this.chain[p].concat([p]));
    }
    this.byPath = {};
    for (i = 0; i < rows.length; i++) this.byPath[rows[i].path] = i;
    this.mergeById = {};
    for (i = 0; i < data.merges.length; i++) this.mergeById[data.merges[i].id] = data.merges[i];
    this.build(host);
    this.setDepth(data.start_depth);
  }

  View.prototype.build = function (host) {
    var d = this.data, self = this;
    var root = el("section", {"class": "view", "data-spec": d.spec}, host);
    var summary = el("header", {"class": "summary"}, root);
    var h1 = el("h1", {}, summary, d.footer[0] + " ");
    el("span", {"class": "spec"}, h1, "(" + d.spec + ")");
    var flagged = d.footer.slice(1).filter(function (line) {
      return line.indexOf("warning: ") === 0 || line.indexOf("note: ") === 0;
    });
    d.footer.slice(1).forEach(function (line, k) {
      if (flagged.indexOf(line) < 0) el("div", {"class": k === 0 ? "line" : "line dim"}, summary, line);
    });
    if (flagged.length) {  // folded: the nodes they are about are marked in the graph
      var fold = el("details", {"class": "flags"}, summary);
      el("summary", {"class": "line warn"}, fold, d.flag_summary);
      flagged.forEach(function (line) {
        el("div", {"class": line.indexOf("warning") === 0 ? "line warn" : "line dim"}, fold, line);
      });
    }
    var controls = el("div", {"class": "controls"}, summary);
    var depth = el("div", {"class": "group depth"}, controls);
    el("span", {"class": "label"}, depth, "depth");
    this.depthButtons = [];
    d.depths.concat([null]).forEach(function (value) {
      var b = el("button", {"data-depth": value === null ? "all" : String(value)}, depth,
                 value === null ? "all" : String(value));
      b.addEventListener("click", function () { self.setDepth(value); });
      self.depthButtons.push(b);
    });
    var shade = el("div", {"class": "group shade"}, controls);
    el("span", {"class": "label"}, shade, "shade by");
    this.shadeButtons = [];
    d.shades.forEach(function (s) {
      var b = el("button", {"data-metric": s[0]}, shade, s[1]);
      b.addEventListener("click", function () { self.setMetric(s[0]); });
      self.shadeButtons.push(b);
    });
    this.legend = el("span", {"class": "legend"}, shade);
    var zoom = el("div", {"class": "group zoom"}, controls);
    el("span", {"class": "label"}, zoom, "zoom");
    [["−", 1 / 1.25], ["+", 1.25], ["fit", 0], ["1:1", 1]].forEach(function (z) {
      var b = el("button", {"data-zoom": z[0]}, zoom, z[0]);
      b.addEventListener("click", function () { self.setZoom(z[1], z[0] === "1:1"); });
    });
    el("span", {"class": "legend"}, controls,
       "click a node for its figures; ⊞ or double-click opens a block, ⊟ closes it");
    var main = el("div", {"class": "main"}, root);
    this.graphWrap = el("div", {"class": "graph-wrap"}, main);
    this.svg = sv("svg", {"class": "graph"}, this.graphWrap);
    var side = el("div", {"class": "side"}, main);
    this.details = el("div", {"class": "details"}, side);
    el("p", {"class": "empty"}, this.details, "Select a node or a row.");
    var wrap = this.tableWrap = el("div", {"class": "table-wrap"}, side);
    this.table = el("table", {"class": "rows"}, wrap);
    var tr = el("tr", {}, el("thead", {}, this.table));
    this.headCells = d.headers.map(function (h, k) {
      var th = el("th", {"class": d.right[k] ? "num" : "", "data-column": String(k)}, tr, h);
      th.addEventListener("click", function () { self.sortBy(k); });
      return th;
    });
    this.tbody = el("tbody", {}, this.table);
    var foot = el("tr", {}, el("tfoot", {}, this.table));
    d.total_cells.forEach(function (c, k) {
      el("td", {"class": self.headCells[k].className}, foot, c);
    });
    this.root = root;
  };

  // ---- which nodes show

  View.prototype.isGroup = function (i) { return !this.data.rows[i].leaf; };

  View.prototype.collapsedAncestor = function (chain) {
    for (var k = 0; k < chain.length; k++) if (!this.expanded[chain[k]]) return chain[k];
    return -1;
  };

  // the visible node standing for a unit (a row, a merge, the input or an output)
  View.prototype.rep = function (unit) {
    var c = unit.charAt(0);
    if (c === "r") {
      var i = +unit.slice(1), top = this.collapsedAncestor(this.chain[i]);
      return top >= 0 ? "r" + top : unit;
    }
    if (c === "m") {
      var m = this.mergeById[unit], p = m.parent;
      if (p < 0) return unit;
      var up = this.collapsedAncestor(this.chain[p].concat([p]));
      return up >= 0 ? "r" + up : unit;
    }
    return unit;
  };

  // rows drawn as nodes (leaves and collapsed groups whose ancestors are open), in row order
  View.prototype.visibleRows = function () {
    var out = [];
    for (var i = 0; i < this.data.rows.length; i++) {
      if (this.collapsedAncestor(this.chain[i]) >= 0) continue;
      if (this.isGroup(i) && this.expanded[i]) continue;
      out.push(i);
    }
    return out;
  };

  View.prototype.openGroups = function () {
    var out = [];
    for (var k = 0; k < this.data.groups.length; k++) {
      var i = this.data.groups[k];
      if (this.expanded[i] && this.collapsedAncestor(this.chain[i]) < 0) out.push(i);
    }
    return out;
  };

  View.prototype.setDepth = function (depth) {
    var d = this.data;
    this.expanded = {};
    for (var k = 0; k < d.groups.length; k++) {
      var i = d.groups[k];
      if (depth === null || d.rows[i].depth < depth) this.expanded[i] = true;
    }
    this.redraw(depth === null ? "all" : String(depth));
  };

  View.prototype.toggle = function (i) {
    this.expanded[i] = !this.expanded[i];
    this.redraw(null);
    this.select(i, true);
  };

  // open the blocks around row i (selecting a row whose node is inside a closed block)
  View.prototype.reveal = function (i) {
    var closed = this.chain[i].filter(function (a) { return !this.expanded[a]; }, this);
    if (!closed.length) return;
    closed.forEach(function (a) { this.expanded[a] = true; }, this);
    this.redraw(null);
  };

  // ---- layout and drawing

  // lay out and draw what is open now; ``depth``: the depth button to light (null: none, as
  // after opening or closing one block)
  View.prototype.redraw = function (depth) {
    var d = this.data, self = this;
    this.depthButtons.forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-depth") === depth); });
    var g = new dagre.graphlib.Graph({compound: true, multigraph: false});
    g.setGraph({rankdir: "TB", nodesep: 22, ranksep: 18, edgesep: 14, marginx: 16, marginy: 16});
    g.setDefaultEdgeLabel(function () { return {}; });
    var visible = this.visibleRows(), open = this.openGroups();
    var openSet = {};
    open.forEach(function (i) { openSet[i] = true; });
    function clusterOf(parent) { return parent >= 0 && openSet[parent] ? "c" + parent : null; }
    visible.forEach(function (i) {
      var n = d.nodes[i], group = self.isGroup(i);
      var w = Math.max(textWidth(n.title, BOLD), textWidth(n.subtitle, SMALL)) + (group ? 40 : 20);
      if (n.warnings.length) w += 14;
      g.setNode("r" + i, {kind: "row", row: i, width: Math.max(w, 64), height: 36});
    });
    open.forEach(function (i) {
      g.setNode("c" + i, {kind: "cluster", row: i});
      // the cluster's title row: a node of its own at the cluster's top, so that no node
      // covers the title and its close button
      var text = d.rows[i].path + " · " + d.nodes[i].subtitle;
      g.setNode("h" + i, {kind: "header", row: i, text: text,
                          width: textWidth(text, SMALL) + 26, height: 16});
      g.setParent("h" + i, "c" + i);
    });
    d.merges.forEach(function (m) {
      if (self.rep(m.id) !== m.id) return;
      var w = m.label === "+" ? 22 : textWidth(m.label, SMALL) + 14;
      g.setNode(m.id, {kind: "merge", merge: m, width: w, height: 22});
    });
    g.setNode("in", {kind: "terminal", text: "input " + d.input_shape,
                     width: textWidth("input " + d.input_shape, SMALL) + 20, height: 24});
    d.outputs.forEach(function (o) {
      var text = o.label + " " + o.shape;
      g.setNode(o.id, {kind: "terminal", text: text, width: textWidth(text, SMALL) + 20, height: 24});
    });
    // nesting: rows and merges inside open groups
    visible.forEach(function (i) {
      var c = clusterOf(d.nodes[i].parent);
      if (c) g.setParent("r" + i, c);
    });
    open.forEach(function (i) {
      var c = clusterOf(d.nodes[i].parent);
      if (c) g.setParent("c" + i, c);
    });
    d.merges.forEach(function (m) {
      if (g.hasNode(m.id)) { var c = clusterOf(m.parent); if (c) g.setParent(m.id, c); }
    });
    // edges between the nodes standing for their ends, once each. An edge that carries an open
    // group's input into it runs through the group's title (its input port); a title is above
    // everything else that enters its group (an unseen edge keeps it there)
    var seen = {};
    var inside = function (unit) {  // the open groups around a drawn unit, outermost first
      var c = unit.charAt(0);
      var p = c === "r" ? d.nodes[+unit.slice(1)].parent : c === "m" ? self.mergeById[unit].parent : -1;
      return p < 0 ? [] : self.chain[p].concat([p]).filter(function (x) { return openSet[x]; });
    };
    function edge(a, b, label, unseen) {
      var key = a + ">" + b;
      if (seen[key]) return;
      seen[key] = true;
      if (unseen) {
        g.setEdge(a, b, {unseen: true, width: 0, height: 0, minlen: 1});
        return;
      }
      // lighter into a merge: a short branch then sits up by where it starts, not down by the
      // merge (dagre shortens heavier edges first)
      g.setEdge(a, b, {label: label || "", width: label ? textWidth(label, TINY) + 6 : 0,
                       height: label ? 12 : 0, labelpos: "c", weight: b.charAt(0) === "m" ? 1 : 2});
    }
    // (added last to first: dagre then draws a node's consumers left to right in their order)
    d.edges.slice().reverse().forEach(function (e) {
      var a = self.rep(e[0]), b = self.rep(e[1]);
      if (a === b) return;
      var from = inside(a), entering = inside(b).filter(function (x) { return from.indexOf(x) < 0; });
      var at = a, label = e[2];
      entering.forEach(function (c, k) {
        var next = k + 1 < entering.length ? "h" + entering[k + 1] : b;
        if (at !== null && self.rep(d.nodes[c].input) === a) {
          edge(at, "h" + c, label);
          at = "h" + c; label = null;
        } else {
          edge("h" + c, next, null, true);
        }
      });
      edge(at, b, label);
    });
    dagre.layout(g);
    this.graph = g;
    this.paint(g);
    this.fillTable();
    if (this.selected !== null) this.select(+this.rep("r" + this.selected).slice(1), false);
  };

  View.prototype.bands = function (g) {
    // the vertical extent of every rank (nodes and edge labels centred on one y)
    var bands = {};
    function add(y, h) {
      var k = Math.round(y);
      bands[k] = Math.max(bands[k] || 0, h / 2);
    }
    g.nodes().forEach(function (v) {
      var n = g.node(v);
      if (n.kind !== "cluster") add(n.y, n.height);
    });
    g.edges().forEach(function (e) {
      var l = g.edge(e);
      if (l.x !== undefined && !l.unseen) add(l.y, l.height);
    });
    return function (y) { return bands[Math.round(y)] || 0; };
  };

  // edges run straight down through each rank (through dagre's dummy points) and slant only
  // between ranks, where there are no nodes: so no edge crosses a node
  View.prototype.route = function (g, e, band) {
    var s = g.node(e.v), t = g.node(e.w), pts = g.edge(e).points || [];
    var out = [[s.x, s.y + s.height / 2], [s.x, s.y + band(s.y)]];
    for (var k = 1; k < pts.length - 1; k++) {
      var h = band(pts[k].y);
      out.push([pts[k].x, pts[k].y - h], [pts[k].x, pts[k].y + h]);
    }
    out.push([t.x, t.y - band(t.y)], [t.x, t.y - t.height / 2]);
    return out;
  };

  View.prototype.paint = function (g) {
    var d = this.data, self = this, svg = this.svg;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var info = g.graph();
    this.width = info.width; this.height = info.height;
    svg.setAttribute("viewBox", "0 0 " + info.width + " " + info.height);
    this.applyZoom();
    var defs = sv("defs", {}, svg);
    var marker = sv("marker", {id: "arrow" + this.index, viewBox: "0 0 8 8", refX: "8", refY: "4",
                              markerWidth: "7", markerHeight: "7", orient: "auto"}, defs);
    sv("path", {d: "M0,0 L8,4 L0,8 z", fill: "#7d8590"}, marker);
    var clusters = sv("g", {"class": "clusters"}, svg);
    var edges = sv("g", {"class": "edges"}, svg);
    var labels = sv("g", {"class": "edge-labels"}, svg);
    var nodes = sv("g", {"class": "nodes"}, svg);
    this.nodeEls = {};
    this.clusterEls = {};
    this.edgeEls = [];
    // clusters, outer first (drawn beneath)
    var open = g.nodes().filter(function (v) { return g.node(v).kind === "cluster"; });
    open.sort(function (a, b) {
      return self.chain[g.node(a).row].length - self.chain[g.node(b).row].length;
    });
    open.forEach(function (v) {
      var n = g.node(v), i = n.row, node = d.nodes[i];
      var head = d.rows[i].head;
      var c = sv("g", {"class": "cluster" + (head ? " head" : ""), "data-row": String(i)}, clusters);
      sv("rect", {"class": "frame", x: n.x - n.width / 2, y: n.y - n.height / 2,
                  width: n.width, height: n.height, rx: 6}, c);
      var hd = g.node("h" + i);
      sv("rect", {"class": "hbar", x: hd.x - hd.width / 2, y: hd.y - hd.height / 2,
                  width: hd.width, height: hd.height, rx: 3}, c);
      var tg = sv("g", {"class": "toggle", "data-row": String(i)}, c);
      var tx = hd.x - hd.width / 2 + 2, ty = hd.y - 6.5;
      sv("rect", {x: tx, y: ty, width: 13, height: 13, rx: 2}, tg);
      sv("text", {x: tx + 6.5, y: ty + 10.5, "text-anchor": "middle"}, tg, "−");
      sv("title", {}, tg, "close " + d.rows[i].path);
      tg.addEventListener("click", function (ev) { ev.stopPropagation(); self.toggle(i); });
      var label = sv("text", {"class": "ctitle", x: tx + 18, y: ty + 10.5}, c, hd.text);
      label.addEventListener("click", function () { self.select(i, true); });
      sv("title", {}, label, node.details.map(function (p) { return p[0] + ": " + p[1]; }).join("\n"));
      self.clusterEls[i] = c;
    });
    var band = this.bands(g);
    this.routes = {};
    g.edges().forEach(function (e) {
      if (g.edge(e).unseen) return;
      var pts = self.route(g, e, band);
      var head = self.unitHead(e.v) || self.unitHead(e.w);
      var path = sv("path", {"class": "edge" + (head ? " head" : ""), "data-from": e.v, "data-to": e.w,
                             d: "M" + pts.map(function (p) { return p[0] + "," + p[1]; }).join(" L"),
                             "marker-end": "url(#arrow" + self.index + ")"}, edges);
      self.edgeEls.push(path);
      self.routes[e.v + ">" + e.w] = pts;
      var lab = g.edge(e);
      if (lab.x !== undefined && lab.label)
        sv("text", {"class": "elabel", x: lab.x, y: lab.y + 3.5, "text-anchor": "middle"}, labels, lab.label);
    });
    g.nodes().forEach(function (v) {
      var n = g.node(v);
      if (n.kind === "row") self.paintRow(nodes, v, n);
      else if (n.kind === "merge") self.paintMerge(nodes, v, n);
      else if (n.kind === "terminal") {
        var t = sv("g", {"class": "terminal", "data-unit": v}, nodes);
        sv("rect", {x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height, rx: 12}, t);
        sv("text", {x: n.x, y: n.y + 4, "text-anchor": "middle"}, t, n.text);
      }
    });
    this.shadeNodes();
  };

  View.prototype.unitHead = function (unit) {
    if (unit.charAt(0) === "r" || unit.charAt(0) === "h") return this.data.rows[+unit.slice(1)].head;
    if (unit.charAt(0) === "m") return this.mergeById[unit].head;
    return false;
  };

  View.prototype.paintRow = function (parent, v, n) {
    var d = this.data, self = this, i = n.row, node = d.nodes[i], row = d.rows[i];
    var group = this.isGroup(i);
    var cls = "node" + (group ? " group" : "") + (row.head ? " head" : "") +
              (node.severity === "warning" ? " warned" : node.severity === "note" ? " noted" : "");
    var x0 = n.x - n.width / 2, y0 = n.y - n.height / 2;
    var ng = sv("g", {"class": cls, "data-row": String(i), "data-path": row.path}, parent);
    sv("rect", {"class": "box", x: x0, y: y0, width: n.width, height: n.height, rx: group ? 7 : 4}, ng);
    sv("text", {"class": "title", x: x0 + 8, y: y0 + 15}, ng, node.title);
    sv("text", {"class": "subtitle", x: x0 + 8, y: y0 + 29}, ng, node.subtitle);
    var bx = x0 + n.width - (group ? 34 : 14);
    if (node.severity === "warning") sv("text", {"class": "badge", x: bx, y: y0 + 15}, ng, "⚠");
    else if (node.severity === "note") {
      var mark = sv("g", {"class": "badge note"}, ng);
      sv("circle", {cx: bx + 5, cy: y0 + 10, r: 5.5}, mark);
      sv("text", {x: bx + 5, y: y0 + 13.5, "text-anchor": "middle"}, mark, "i");
    }
    sv("title", {}, ng, [row.path].concat(node.details.map(function (p) {
      return p[0] + ": " + p[1];
    }), row.formula, node.warnings).join("\n"));
    ng.addEventListener("click", function () { self.select(i, true); });
    if (group) {
      ng.addEventListener("dblclick", function () { self.toggle(i); });
      var tg = sv("g", {"class": "toggle", "data-row": String(i)}, ng);
      var tx = x0 + n.width - 19, ty = y0 + 4;
      sv("rect", {x: tx, y: ty, width: 15, height: 15, rx: 2}, tg);
      sv("text", {x: tx + 7.5, y: ty + 12, "text-anchor": "middle"}, tg, "+");
      sv("title", {}, tg, "open " + row.path);
      tg.addEventListener("click", function (ev) { ev.stopPropagation(); self.toggle(i); });
    }
    this.nodeEls[i] = ng;
  };

  View.prototype.paintMerge = function (parent, v, n) {
    var m = n.merge;
    var mg = sv("g", {"class": "merge" + (m.head ? " head" : ""), "data-unit": v, "data-path": m.path}, parent);
    if (m.label === "+") sv("circle", {cx: n.x, cy: n.y, r: 10}, mg);
    else sv("rect", {x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height, rx: 10}, mg);
    sv("text", {x: n.x, y: n.y + 4, "text-anchor": "middle"}, mg, m.label);
    sv("title", {}, mg, m.title);
  };

  View.prototype.setMetric = function (metric) {
    this.metric = metric;
    this.shadeNodes();
  };

  View.prototype.shadeNodes = function () {
    var d = this.data, self = this;
    for (var i in this.nodeEls)
      this.nodeEls[i].querySelector("rect.box").setAttribute("fill", d.nodes[i].shade[this.metric]);
    this.shadeButtons.forEach(function (b) {
      b.classList.toggle("on", b.getAttribute("data-metric") === self.metric);
    });
    var s = d.shades.filter(function (x) { return x[0] === self.metric; })[0];
    this.legend.innerHTML = "";
    el("span", {}, this.legend, "0");
    el("span", {"class": "swatch", style: "background: linear-gradient(to right, " + s[2] + ", " + s[3] + ")"},
       this.legend);
    el("span", {}, this.legend, "largest share at its depth");
  };

  View.prototype.setZoom = function (factor, absolute) {
    if (factor === 0) {  // fit the width of the pane (never enlarged)
      this.zoom = Math.min(1, (this.graphWrap.clientWidth - 4) / this.width);
    } else {
      this.zoom = absolute ? factor : this.zoom * factor;
    }
    this.applyZoom();
  };

  View.prototype.applyZoom = function () {
    this.svg.setAttribute("width", String(this.width * this.zoom));
    this.svg.setAttribute("height", String(this.height * this.zoom));
  };

  // ---- the table

  View.prototype.fillTable = function () {
    var d = this.data, self = this;
    var rows = this.visibleRows();
    if (this.sort) {
      var k = this.sort[0], dir = this.sort[1], field = d.sort_fields[k];
      var key = function (i) {
        if (field === null) return d.nodes[i].cells[k];
        return d.rows[i][field];
      };
      var order = {};
      rows.forEach(function (i, n) { order[i] = n; });
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var c = x < y ? -1 : (x > y ? 1 : 0);
        return c !== 0 ? c * dir : order[a] - order[b];
      });
    }
    this.tbody.innerHTML = "";
    this.rowEls = {};
    rows.forEach(function (i) {
      var r = d.rows[i];
      var tr = el("tr", {"data-row": String(i), "class": (r.leaf ? "" : "group") + (r.head ? " head" : "")},
                  self.tbody);
      d.nodes[i].cells.forEach(function (c, k) {
        el("td", {"class": (k === 0 ? "path " : "") + self.headCells[k].className}, tr, c)
          .title = k === 0 ? r.path : "";
      });
      tr.addEventListener("click", function () { self.select(i, true); });
      self.rowEls[i] = tr;
    });
    this.headCells.forEach(function (th, k) {
      th.classList.remove("sorted-asc", "sorted-desc");
      if (self.sort && self.sort[0] === k) th.classList.add(self.sort[1] > 0 ? "sorted-asc" : "sorted-desc");
    });
    if (this.selected !== null && this.rowEls[this.selected]) this.rowEls[this.selected].classList.add("selected");
  };

  View.prototype.sortBy = function (k) {
    if (this.sort && this.sort[0] === k) this.sort = [k, -this.sort[1]];
    else this.sort = [k, this.data.sort_first[k]];
    this.fillTable();
  };

  // ---- selection

  View.prototype.select = function (i, scroll) {
    var d = this.data, self = this;
    if (this.rep("r" + i) !== "r" + i && !this.expanded[i]) this.reveal(i);
    this.selected = i;
    [this.nodeEls, this.clusterEls, this.rowEls].forEach(function (map) {
      for (var k in map) map[k].classList.toggle("selected", +k === i);
    });
    this.edgeEls.forEach(function (p) {
      var ends = [p.getAttribute("data-from"), p.getAttribute("data-to")];
      var lit = ends.indexOf("r" + i) >= 0 || ends.indexOf("h" + i) >= 0;
      p.classList.toggle("lit", lit);
    });
    this.showDetails(i);
    if (scroll) {
      var tr = this.rowEls[i];
      if (tr) {  // scroll the table only, never the page
        var box = this.tableWrap.getBoundingClientRect(), at = tr.getBoundingClientRect();
        var top = at.top - box.top, head = this.table.tHead.getBoundingClientRect().height;
        if (top < head || top + at.height > this.tableWrap.clientHeight)
          this.tableWrap.scrollTop += top - this.tableWrap.clientHeight / 3;
      }
      var n = this.graph.node("r" + i) || this.graph.node("c" + i);
      if (n) {
        var wrap = this.graphWrap, x = n.x * this.zoom, y = (n.y - n.height / 2) * this.zoom;
        if (y < wrap.scrollTop || y > wrap.scrollTop + wrap.clientHeight - 40)
          wrap.scrollTop = y - wrap.clientHeight / 3;
        if (x < wrap.scrollLeft || x > wrap.scrollLeft + wrap.clientWidth)
          wrap.scrollLeft = x - wrap.clientWidth / 2;
      }
    }
  };

  View.prototype.showDetails = function (i) {
    var d = this.data, row = d.rows[i], node = d.nodes[i], box = this.details;
    box.innerHTML = "";
    el("h2", {}, box, row.path);
    var columns = el("div", {"class": "columns"}, box);
    var dl = el("dl", {}, columns);
    node.details.forEach(function (p) {
      el("dt", {}, dl, p[0]);
      el("dd", {"data-field": p[0]}, dl, p[1]);
    });
    var more = el("div", {"class": "more"}, columns);
    if (row.formula.length) el("pre", {"class": "formula"}, more, row.formula.join("\n"));
    node.warnings.forEach(function (w) { el("div", {"class": "warning"}, more, w); });
  };

  // ---- the page

  function comparisonBlock(host, c, views) {
    var box = el("div", {"class": "comparison"}, host);
    el("h2", {}, box, "Comparison");
    var tables = el("div", {"class": "tables"}, box);
    [[c.totals, false], [c.rows, true]].forEach(function (pair) {
      var t = pair[0], table = el("table", {"class": pair[1] ? "matches" : "totals"}, tables);
      var tr = el("tr", {}, el("thead", {}, table));
      t.headers.forEach(function (h) { el("th", {}, tr, h); });
      var body = el("tbody", {}, table);
      t.rows.forEach(function (cells, k) {
        var r = el("tr", pair[1] ? {"class": "match", "data-path": t.paths[k]} : {}, body);
        cells.forEach(function (x) { el("td", {}, r, x); });
        if (pair[1]) r.addEventListener("click", function () {
          views.forEach(function (v) {
            var i = v.byPath[t.paths[k]];
            if (i !== undefined) v.select(i, true);
          });
        });
      });
    });
    el("p", {"class": "note"}, box, c.convention);
  }

  var app = document.getElementById("app");
  app.innerHTML = "";
  var views = [];
  var compare = DATA.views.length > 1;
  var comparisonHost = compare ? el("div", {}, app) : null;
  var host = compare ? el("div", {"class": "panes compare"}, app) : app;
  if (compare) app.classList.add("compare-page");
  DATA.views.forEach(function (data, k) { views.push(new View(host, data, k)); });
  if (compare) {
    views.forEach(function (v) { v.root.classList.add("compare"); });
    comparisonBlock(comparisonHost, DATA.comparison, views);
  }
  window.cnncalcView = {
    views: views,
    // what the tests read: nodes' boxes and the edges' routes, in the graph's coordinates
    geometry: function (k) {
      var g = views[k].graph, out = {nodes: [], clusters: [], edges: []};
      g.nodes().forEach(function (v) {
        var n = g.node(v);
        var box = {id: v, kind: n.kind, x: n.x - n.width / 2, y: n.y - n.height / 2, w: n.width, h: n.height,
                   row: n.row === undefined ? null : n.row};
        (n.kind === "cluster" ? out.clusters : out.nodes).push(box);
      });
      for (var key in views[k].routes) {
        var ends = key.split(">");
        out.edges.push({from: ends[0], to: ends[1], points: views[k].routes[key]});
      }
      return out;
    }
  };
  document.body.setAttribute("data-ready", "1");
})();
