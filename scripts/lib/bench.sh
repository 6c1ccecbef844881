# Shared by the benchmark scripts (source it; it defines functions and nothing runs on its own).
#
#   bench_workdir          WORK=<temp dir>, removed on exit together with whatever start_nginx started
#   free_port              prints a free TCP port on 127.0.0.1 (bind port 0, read it, release it)
#   start_nginx            nginx (Debian's, one worker, keep-alive, access log off) on a free port of
#                          127.0.0.1, pinned to CPU 1 at priority PRIO; sets PORT and URL. Locations:
#                          `/` returns 200 "ok", `/json...` a small JSON document, `/cookie` 200 "ok"
#                          with a Set-Cookie of a session id unique to the request.
#                          With NGINX_TLS=1 it also serves the same `/` over HTTPS (TLS 1.3 only,
#                          TLS_AES_128_GCM_SHA256 only, so every client negotiates the same cipher; a
#                          fresh self-signed certificate for 127.0.0.1) and sets TLS_PORT, TLS_URL and
#                          CA_FILE (the certificate, for clients that verify).
#   measure CMD...         runs CMD, saves its output in $BENCH_OUT, prints "<cpu seconds> <max RSS KiB>"
#                          of the child (user + system time from getrusage); exits with CMD's status
#   median N...            the median (upper median for an even count)
#
# Only loopback is used.

bench_workdir() {
    WORK=$(mktemp -d)
    BENCH_PIDS=()
    export BENCH_OUT="$WORK/out"
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (at most 5 s).
wait_port() {
    local _
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on 127.0.0.1:$1 after 5 s" >&2
    return 1
}

start_nginx() {
    PORT=$(free_port)
    mkdir -p "$WORK/nginx/logs"
    local tls_server=""
    if [ "${NGINX_TLS:-0}" = 1 ]; then
        TLS_PORT=$(free_port)
        CA_FILE="$WORK/nginx/cert.pem"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
            -keyout "$WORK/nginx/key.pem" -out "$CA_FILE" 2>/dev/null
        tls_server="server {
        listen 127.0.0.1:$TLS_PORT ssl backlog=16384;
        ssl_certificate $CA_FILE;
        ssl_certificate_key $WORK/nginx/key.pem;
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
        ssl_session_tickets off;
        location / { return 200 \"ok\"; }
    }"
        TLS_URL="https://127.0.0.1:$TLS_PORT/"
    fi
    cat > "$WORK/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
error_log $WORK/nginx/logs/error.log warn;
pid $WORK/nginx/nginx.pid;
events { worker_connections 30000; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$PORT backlog=16384;
        location / { return 200 "ok"; }
        location /json { default_type application/json; return 200 '{"id":42,"name":"stampede","tags":["load","test"]}'; }
        location /cookie { add_header Set-Cookie "session=\$request_id; Path=/; HttpOnly"; return 200 "ok"; }
    }
    $tls_server
}
CONF
    ulimit -n 65536 2>/dev/null || true
    "${PRIO[@]}" taskset -c 1 nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
    BENCH_PIDS+=($!)
    wait_port "$PORT"
    URL="http://127.0.0.1:$PORT/"
    if [ -n "$tls_server" ]; then wait_port "$TLS_PORT"; fi
}

measure() {
    python3 - "$@" <<'PY'
import os, resource, subprocess, sys
out = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
open(os.environ["BENCH_OUT"], "wb").write(out.stdout + out.stderr)
if out.returncode != 0:
    sys.stderr.write(out.stderr.decode(errors="replace"))
    sys.exit(out.returncode)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{ru.ru_utime + ru.ru_stime:.3f} {ru.ru_maxrss}")
PY
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
