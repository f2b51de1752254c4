#!/usr/bin/env bash
# make bench: times evidenced acquire against ewfacquire, dc3dd and md5sum on the same 2 GiB corpus,
# in one run, and prints MB/s and the ratios the engine issue sets as targets. Also images four sim
# drives at once through the API and reports the aggregate rate. Peak RSS of each run is measured
# with /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
CORPUS=${BENCH_CORPUS:-var/cache/corpus-2048.img}
BIN=bin/evidenced
OUT=$(mktemp -d /var/tmp/evidenced-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
command -v /usr/bin/time >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
if [ ! -f "$CORPUS" ]; then
  mkdir -p "$(dirname "$CORPUS")"
  bash "$SHARED/corpus/mkdisk.sh" "$CORPUS.tmp" 2048 > "$CORPUS.log"
  mv "$CORPUS.tmp" "$CORPUS"
fi
size=$(stat -c %s "$CORPUS")
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; cat "$CORPUS" > /dev/null; }  # same warm cache for all
declare -A secs rss
run() { # name cmd...
  local name=$1; shift
  drop
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$OUT/$name.rss" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" || { echo "$name failed:"; cat "$OUT/$name.err"; exit 1; }
  t1=$(date +%s.%N)
  secs[$name]=$(echo "$t1 - $t0" | bc -l)
  rss[$name]=$(( $(cat "$OUT/$name.rss") / 1024 ))
  printf '%-28s %7.2f s  %8.1f MB/s  RSS %4d MiB\n' "$name" "${secs[$name]}" "$(echo "$size / 1000000 / ${secs[$name]}" | bc -l)" "${rss[$name]}"
}
echo "corpus $CORPUS ($size bytes), $(nproc) cores"
run md5sum md5sum "$CORPUS"
run evidenced-raw "$BIN" acquire --verify=false --source "$CORPUS" --format raw --out "$OUT/raw/img" --hash md5,sha1
rm -rf "$OUT/raw"
run evidenced-e01-fast "$BIN" acquire --verify=false --source "$CORPUS" --format e01 --compression fast --out "$OUT/e01/img" --hash md5,sha1
e01size=$(du -cb "$OUT"/e01/img.E* | tail -1 | cut -f1)
rm -rf "$OUT/e01"
run evidenced-aff4-lz4 "$BIN" acquire --verify=false --source "$CORPUS" --format aff4 --compression lz4 --out "$OUT/aff4/img" --hash md5,sha1
rm -rf "$OUT/aff4"
mkdir -p "$OUT/ewf"
run ewfacquire-fast ewfacquire -u -q -t "$OUT/ewf/img" -c deflate:fast -d sha1 -C c -D d -E e -e x -N n "$CORPUS"
ewfsize=$(du -cb "$OUT"/ewf/img.E* | tail -1 | cut -f1)
rm -rf "$OUT/ewf"
run dc3dd dc3dd if="$CORPUS" of="$OUT/dc3dd.raw" hash=md5 hash=sha1
rm -f "$OUT/dc3dd.raw"

# Four sim drives at once through the API (the daemon on a board file whose four source ports all
# hold the corpus): one drive alone, then four together; E01 fast, MD5+SHA1, no verify pass.
port=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$OUT/api/targets"
ports=""
for i in 1 2 3 4; do
  ports+="${ports:+,}{\"name\": \"SATA$i\", \"mode\": \"source\", \"drive\": {\"path\": \"$(realpath "$CORPUS")\", \"model\": \"Bench Disk\", \"serial\": \"BENCH$i\"}}"
done
echo "{\"kind\": \"sim\", \"applianceId\": \"BENCH\", \"ports\": [$ports]}" > "$OUT/api/board.json"
"$BIN" --board "$OUT/api/board.json" --data-dir "$OUT/api/data" \
  --target-root "$OUT/api/targets" --listen "127.0.0.1:$port" > "$OUT/daemon.log" 2>&1 &
dpid=$!
trap 'kill $dpid 2>/dev/null; rm -rf "$OUT"' EXIT
api() { curl -sf "http://127.0.0.1:$port$1"; }
for _ in $(seq 100); do api /healthz >/dev/null 2>&1 && break; sleep 0.1; done
images() { # drives...: start one image per drive, wait for all, print seconds
  local keys=() t0 t1 k st
  drop
  t0=$(date +%s.%N)
  for d in "$@"; do
    keys+=("$(api "/api/start-image?source=$d&targetFolder=$OUT/api/targets/$d&verify=false")") || { echo "start-image $d failed"; exit 1; }
  done
  for k in "${keys[@]}"; do
    while :; do
      st=$(api "/api/check-task?taskKey=$k" | sed -n 's/.*"state": *"\([a-z-]*\)".*/\1/p')
      case $st in completed) break ;; failed|stopped) echo "task $k $st"; api "/api/check-task?taskKey=$k"; exit 1 ;; esac
      sleep 0.2
    done
  done
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
  rm -rf "$OUT"/api/targets/*
}
one=$(images SATA1)
four=$(images SATA1 SATA2 SATA3 SATA4)
drss=$(( $(awk '/^VmHWM/ {print $2}' /proc/$dpid/status) / 1024 ))  # the daemon's peak RSS
kill -TERM $dpid; wait $dpid 2>/dev/null || true
printf '%-28s %7.2f s  %8.1f MB/s\n' "api-e01-one-drive" "$one" "$(echo "$size / 1000000 / $one" | bc -l)"
printf '%-28s %7.2f s  %8.1f MB/s aggregate  (daemon RSS %d MiB)\n' "api-e01-four-drives" "$four" "$(echo "4 * $size / 1000000 / $four" | bc -l)" "$drss"

ratio() { echo "$1 / $2" | bc -l; }
echo
printf 'raw wall time / md5sum:              %5.2f  (target <= 1.10)\n' "$(ratio "${secs[evidenced-raw]}" "${secs[md5sum]}")"
printf 'raw throughput / dc3dd:              %5.2f\n' "$(ratio "${secs[dc3dd]}" "${secs[evidenced-raw]}")"
printf 'E01 fast wall time / md5sum:         %5.2f  (target <= 1.25)\n' "$(ratio "${secs[evidenced-e01-fast]}" "${secs[md5sum]}")"
printf 'E01 fast throughput / ewfacquire:    %5.2f  (target >= 8)\n' "$(ratio "${secs[ewfacquire-fast]}" "${secs[evidenced-e01-fast]}")"
printf 'E01 fast size / ewfacquire fast:     %5.4f  (target <= 1.02)\n' "$(ratio "$e01size" "$ewfsize")"
printf 'AFF4 lz4 throughput / E01 fast:      %5.2f\n' "$(ratio "${secs[evidenced-e01-fast]}" "${secs[evidenced-aff4-lz4]}")"
printf 'four drives aggregate / one drive:   %5.2f  (target >= 1)\n' "$(ratio "$(echo "4 * $one" | bc -l)" "$four")"
maxrss=$drss
for n in "${!rss[@]}"; do
  if [[ $n == evidenced-* ]] && (( rss[$n] > maxrss )); then maxrss=${rss[$n]}; fi
done
printf 'peak RSS of evidenced:               %5d MiB (target <= 256)\n' "$maxrss"

# hal/linux's Reader against dd iflag=direct bs=1M on the same loop device (needs root), and the time
# from losetup to the plugged event.
if [ "$(id -u)" = 0 ]; then
  echo
  EVIDENCED_BENCH_HAL=${BENCH_HAL_MIB:-512} go test -count=1 -run TestBenchReaderVsDD -v ./hal/linux | grep -E 'MiB loop device|Reader at|^(ok|FAIL)'
fi
