# bench-lib.sh - sourced by the parts of make bench that time `eddy run` over a file.
# bench_conf FILE PROCESSORS INPUT SINK [key=value...]: a config reading INPUT, writing
# sink SINK and the dead letters to out.ndjson and dlq.ndjson beside FILE, with the
# bench's MariaDB (MYSQL_PORT, MYSQL_PASSWORD), no admin endpoint, warnings only.
bench_conf() {
  local f=$1 procs=$2 input=$3 sink=$4 d
  d=$(dirname "$f")
  shift 4
  {
    echo "processors.dir=$procs"
    echo "source.file.path=$input"
    echo "sink.$sink.type=file"
    echo "sink.$sink.path=$d/out.ndjson"
    echo "sink.dlq.type=file"
    echo "sink.dlq.path=$d/dlq.ndjson"
    echo "dlq.sink=dlq"
    echo "admin.listen="
    echo "log.level=warn"
    echo "mysql.url=mysql://eddy:${MYSQL_PASSWORD:?}@127.0.0.1:${MYSQL_PORT:?}/eddy"
    for l in "$@"; do echo "$l"; done
  } > "$f"
}
