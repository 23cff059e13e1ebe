#!/bin/sh
# Records this machine's node_exporter metrics into a Prometheus TSDB that
# outlives sessions, for the forecasting backtest on real data:
#
#   benches/record-node.sh [DIR]          # default DIR: /work/realdata; idempotent
#   cargo run --release -p silt-bench -- forecast --fetch-real http://127.0.0.1:19090 \
#       --real DIR/export.jsonl --out docs/forecasting.md
#
# node_exporter listens on 127.0.0.1:19100, Prometheus on 127.0.0.1:19090
# (scrape every 15 s, retention 3 years). Both keep running in the
# background; a second call starts only what is not running.
set -eu
dir=${1:-/work/realdata}
mkdir -p "$dir/prom"
cd "$dir"
cat >prometheus.yml <<'YAML'
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:19100']
        labels: {instance: sandbox-1}
YAML
pgrep -f 'node-exporter.*19100' >/dev/null ||
  setsid nohup prometheus-node-exporter --web.listen-address=127.0.0.1:19100 >node.log 2>&1 &
pgrep -f 'prometheus.*19090' >/dev/null ||
  setsid nohup prometheus --config.file=prometheus.yml --storage.tsdb.path=prom \
    --storage.tsdb.retention.time=3y --web.listen-address=127.0.0.1:19090 >prom.log 2>&1 &
