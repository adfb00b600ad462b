// The dashboard's service table: first response, handle time, service level, abandonment,
// transfers and survey response rate per touchpoint × channel × queue over the chosen period.
// One `total` bucket per cell, computed by the API (a percentile cannot be summed from days).
"use strict";

(() => {
  const { t, api, el, metricCell, showError, channelName, lang } = CEM;
  const $ = (id) => document.getElementById(id);
  const COLUMNS = [
    ["count", "conversations"], ["metric", "frt_p50@1"], ["metric", "frt_p90@1"],
    ["metric", "frt_business_p50@1"], ["metric", "frt_business_p90@1"],
    ["count", "calls"], ["metric", "aht@1"], ["metric", "asa@1"], ["metric", "service_level@1"],
    ["metric", "abandonment@1"], ["metric", "transfer@1"], ["metric", "response_rate@1"],
  ];

  // Durations, shown as people read them (the API's seconds in each cell's `data-value`).
  const SECONDS = new Set(["frt_p50@1", "frt_p90@1", "frt_business_p50@1", "frt_business_p90@1", "aht@1", "asa@1"]);

  // The satisfaction table's period, as dashboard.js set it before its `period` event.
  function params() {
    const { since, until } = $("satisfaction").dataset;
    Object.assign($("service").dataset, { since, until });
    const search = new URLSearchParams({ since, until, bucket: "total" });
    for (const dimension of ["touchpoint", "channel", "queue"]) search.append("group_by", dimension);
    return search.toString();
  }

  function row(bucket, minN) {
    return el("tr", { dataset: { touchpoint: bucket.touchpoint, channel: bucket.channel, queue: bucket.queue } },
      el("th", { scope: "row" }, bucket.touchpoint), el("td", {}, channelName(bucket.channel)), el("td", {}, bucket.queue || "—"),
      ...COLUMNS.map(([kind, name]) => (kind === "count"
        ? el("td", { class: "num", dataset: { metric: name } }, String(bucket.counts[name]))
        : metricCell(name, bucket.metrics[name]?.value, bucket.metrics[name]?.n, minN, t("service_low_n"), SECONDS.has(name)))));
  }

  let loads = 0; // an older answer arriving last must not replace a newer one

  async function refresh() {
    const load = ++loads;
    const search = params();
    $("service-xlsx").href = `/v1/service/touchpoints?${search}&format=xlsx&lang=${lang}`;
    $("service-csv").href = `/v1/service/touchpoints?${search}&format=csv`;
    $("service-parquet").href = `/v1/service/touchpoints?${search}&format=parquet`;
    try {
      const result = await api(`/v1/service/touchpoints?${search}`);
      if (load !== loads) return;
      $("service").tBodies[0].replaceChildren(...result.buckets.map((b) => row(b, result.min_confident_n)));
      $("service-empty").textContent = t("no_service_data");
      $("service-empty").hidden = result.buckets.length > 0;
    } catch (error) {
      if (load !== loads) return;
      showError($("service-empty"), error);
      $("service-empty").hidden = false;
    }
  }

  // dashboard.js chooses the period (in the tenant's time zone, which it reads first) and says
  // so with a `period` event on the satisfaction table, on load and on every submit.
  $("satisfaction").addEventListener("period", refresh);
})();
