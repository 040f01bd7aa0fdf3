// Refreshes the status page from /status.json (docs/status.md); draws the markup exporter/landing.py renders.
// Values go in with textContent and setAttribute only: nothing from the document is parsed as HTML.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var CONDITIONS = ["depleted", "low", "unknown", "pending", "fine"];
  var KINDS = { container_group: "container groups", virtual_machine: "virtual machines" };
  var list = document.getElementById("pools");
  var select = document.getElementById("group");
  if (!list || !select) return;

  function el(name, cls, text) {
    var node = document.createElement(name);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(name, attrs) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, String(attrs[key])); });
    return node;
  }
  function age(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    var units = [["d", 86400], ["h", 3600], ["min", 60]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][1]) return Math.floor(seconds / units[i][1]) + " " + units[i][0] + " ago";
    }
    return Math.floor(seconds) + " s ago";
  }
  function groupKey(pool) { return pool.subscription_id.toLowerCase() + "/" + pool.resource_group.toLowerCase(); }
  function readyText(pool) {
    return (pool.ready === null ? "?" : pool.ready) + " / " + (pool.max_ready_capacity === null ? "?" : pool.max_ready_capacity) + " ready";
  }
  function statesText(pool) {
    var names = Object.keys(pool.states);
    if (!names.length) return "instance counts unknown";
    var parts = names.filter(function (s) { return pool.states[s]; }).map(function (s) { return s + " " + pool.states[s]; });
    return parts.length ? parts.join(" · ") : "no instances";
  }
  function healthText(pool) {
    var m = pool.members;
    var parts = ["health " + (pool.health_state || "unknown"), "provisioning " + (pool.provisioning_state || "unknown"),
      m === null ? "members unknown" : "members " + m.ready + " of " + m.total + " ready"];
    if (pool.virtual_machine_state) parts.push("keeps VMs " + pool.virtual_machine_state);
    if (pool.member_read_failures) parts.push(pool.member_read_failures + " member reads failing");
    return parts.join(" · ");
  }
  function bar(pool) {
    var filled = pool.ready && pool.max_ready_capacity ? Math.min(1, pool.ready / pool.max_ready_capacity) * 100 : 0;
    var node = svg("svg", { "class": "bar", viewBox: "0 0 100 8", preserveAspectRatio: "none", "aria-hidden": "true" });
    node.appendChild(svg("rect", { "class": "track", width: 100, height: 8 }));
    node.appendChild(svg("rect", { "class": "fill", width: filled.toFixed(1), height: 8 }));
    return node;
  }
  function sparkline(values) {
    var top = Math.max.apply(null, values.concat([1]));
    var step = 60 / Math.max(1, values.length - 1);
    var points = values.map(function (v, i) { return (i * step).toFixed(1) + "," + (15 - v / top * 14).toFixed(1); }).join(" ");
    var label = values.join(", ");
    var node = svg("svg", { "class": "spark", viewBox: "0 0 60 16", role: "img", "aria-label": label });
    var title = svg("title", {});
    title.textContent = label;
    node.appendChild(title);
    node.appendChild(svg("polyline", { points: points }));
    return node;
  }
  function card(pool, several) {
    var item = el("li", "pool " + pool.condition);
    item.setAttribute("data-pool", pool.name);
    item.setAttribute("data-group", groupKey(pool));
    var title = el("div", "title");
    title.appendChild(el("span", "badge", pool.condition));
    title.appendChild(document.createTextNode(" "));
    title.appendChild(el("strong", "name", pool.name));
    title.appendChild(document.createTextNode(" "));
    title.appendChild(el("span", "kind", KINDS[pool.kind] || pool.kind));
    title.appendChild(document.createTextNode(" "));
    var where = el("span", "where", pool.resource_group + (several ? " (" + pool.subscription_id.slice(0, 8) + ")" : ""));
    where.title = pool.subscription_id;
    title.appendChild(where);
    item.appendChild(title);
    var capacity = el("div", "capacity");
    capacity.appendChild(bar(pool));
    capacity.appendChild(el("span", "ready", readyText(pool)));
    item.appendChild(capacity);
    item.appendChild(el("p", "states", statesText(pool)));
    item.appendChild(el("p", "health", healthText(pool)));
    if (pool.forecast) {
      var values = pool.forecast.instances_requested;
      var forecast = el("p", "forecast", "forecast ");
      forecast.appendChild(sparkline(values));
      forecast.appendChild(el("span", "spark-range", " " + Math.min.apply(null, values) + "-" + Math.max.apply(null, values)));
      item.appendChild(forecast);
    }
    var seen = el("p", "age", "last success ");
    seen.appendChild(el("span", "age-value", age(pool.last_success_age_seconds)));
    item.appendChild(seen);
    if (pool.errors.length) {
      var errors = el("ul", "errors");
      pool.errors.forEach(function (error) {
        var line = el("li");
        line.appendChild(el("b", "", error.part));
        line.appendChild(document.createTextNode(": " + error.error));
        errors.appendChild(line);
      });
      item.appendChild(errors);
    }
    item.hidden = !matches(item);
    return item;
  }
  function matches(item) {
    var wanted = select.value;
    var group = item.getAttribute("data-group");
    return !wanted || group === wanted || (wanted.slice(-1) === "/" && group.indexOf(wanted) === 0);
  }
  function setFact(key, text) {
    var node = document.querySelector('[data-fact="' + key + '"]');
    if (node) node.textContent = text;
  }
  function facts(doc) {
    var r = doc.reload;
    setFact("version", doc.version);
    setFact("shard", doc.shard.index + "/" + doc.shard.count);
    setFact("reload", r === null ? "n/a" : !r.supported ? "not supported (--demo)" :
      r.successful ? "ok" : "FAILED: running the previous configuration");
    setFact("discovered", String(doc.discovered_pools));
    setFact("cycle", doc.poll_cycle_duration_seconds === null ? "not yet" :
      doc.poll_cycle_duration_seconds.toFixed(2) + " s every " + doc.interval_seconds + " s");
    setFact("cycles", String(doc.poll_cycles));
    setFact("remaining", doc.arm_remaining_reads === null ? "unknown" : String(doc.arm_remaining_reads));
    var parts = CONDITIONS.filter(function (c) { return doc.summary[c]; }).map(function (c) { return doc.summary[c] + " " + c; });
    document.getElementById("summary").textContent = parts.length ? doc.pools.length + " pools: " + parts.join(", ") :
      "No pools polled by this exporter.";
  }
  function groups(doc) {
    var wanted = select.value;
    var subs = {};
    doc.pools.forEach(function (p) { (subs[p.subscription_id.toLowerCase()] = subs[p.subscription_id.toLowerCase()] || {})[groupKey(p)] = p.resource_group; });
    var names = Object.keys(subs).sort();
    var options = [["", "all resource groups"]];
    names.forEach(function (sub) {
      if (names.length > 1) options.push([sub + "/", "subscription " + sub]);
      Object.keys(subs[sub]).sort().forEach(function (key) { options.push([key, subs[sub][key]]); });
    });
    var signature = JSON.stringify(options);
    if (select.getAttribute("data-options") === signature) return;  // unchanged: leave an open list alone
    select.setAttribute("data-options", signature);
    select.textContent = "";
    options.forEach(function (o) {
      var option = el("option", "", o[1]);
      option.value = o[0];
      select.appendChild(option);
    });
    select.value = options.some(function (o) { return o[0] === wanted; }) ? wanted : "";
  }
  function render(doc) {
    facts(doc);
    groups(doc);
    var several = Object.keys(doc.pools.reduce(function (s, p) { s[p.subscription_id.toLowerCase()] = 1; return s; }, {})).length > 1;
    var cards = doc.pools.map(function (p) { return card(p, several); });
    list.textContent = "";
    cards.forEach(function (c) { list.appendChild(c); });
    list.setAttribute("data-interval", String(doc.interval_seconds));
    document.body.classList.remove("offline");
  }
  function refresh() {
    fetch("status.json", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(render)
      .catch(function () { document.body.classList.add("offline"); })
      .then(schedule);
  }
  function schedule() {
    var interval = Number(list.getAttribute("data-interval")) || 5;
    window.setTimeout(refresh, Math.min(30, Math.max(2, interval)) * 1000);
  }
  select.addEventListener("change", function () {
    Array.prototype.forEach.call(list.children, function (item) { item.hidden = !matches(item); });
  });
  schedule();
})();
