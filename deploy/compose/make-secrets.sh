#!/usr/bin/env bash
# Makes what docker-compose.yml's secured cluster needs, once, before `docker compose up`:
#   deploy/compose/secrets/  ca.pem (and ca-key.pem, which never leaves this folder), n1.pem/n1-key.pem, n2..., n3...
#                            (common name = node id: peers authenticate each other with these, mutual TLS),
#                            tokens (the nodes' bearer tokens: dashboard and admin operators, an app writer, a monitor reader),
#                            dashboard-users (admin operator and viewer, PBKDF2 hashes) and passwords (theirs, in clear, 600)
#   .env                     the dashboard's node token and the address published ports bind (127.0.0.1)
# Needs openssl and python3. Refuses to overwrite unless --force. --out DIR and --env FILE write elsewhere (tests);
# --nodes a,b,c names other nodes (Kubernetes: --nodes raft-0,raft-1,raft-2, see deploy/kubernetes/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/secrets"
env_file="$here/../../.env"
force=0
nodes=n1,n2,n3
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --env) env_file=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --force) force=1; shift ;;
    *) echo "usage: $0 [--force] [--out DIR] [--env FILE] [--nodes n1,n2,n3]" >&2; exit 2 ;;
  esac
done
for tool in openssl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 1; }
done
if [ -e "$out/ca.pem" ] && [ "$force" = 0 ]; then
  echo "error: $out already holds secrets; --force replaces them (every node and client then needs the new ones)" >&2
  exit 1
fi
mkdir -p "$out"
chmod 700 "$out"
cd "$out"

# A private CA for this cluster only, and one certificate per node (valid for client and server use).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca-key.pem -out ca.pem -days 825 \
  -subj "/CN=raft-compose-ca" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
for id in ${nodes//,/ }; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$id-key.pem" -out "$id.csr" -subj "/CN=$id" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:%s\n' "$id" > "$id.ext"
  openssl x509 -req -in "$id.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out "$id.pem" -days 825 -extfile "$id.ext" 2>/dev/null
  rm "$id.csr" "$id.ext"
done
rm -f ca.srl

token() { openssl rand -hex 24; }
dashboard_token=$(token)
cat > tokens <<TOKENS
# name role token (reader: get, status, watch; writer: also put, delete, cas; operator: also membership, snapshots, faults)
dashboard operator $dashboard_token
admin operator $(token)
app writer $(token)
monitor reader $(token)
TOKENS

# Dashboard users: the hash format is ASP.NET Core Identity's (v3: PBKDF2-HMAC-SHA512, 100,000 iterations), the one
# `Raft.Dashboard hash-password` prints.
hash() {
  python3 - "$1" <<'PY'
import base64, hashlib, os, struct, sys
salt = os.urandom(16)
key = hashlib.pbkdf2_hmac("sha512", sys.argv[1].encode(), salt, 100_000, 32)
print(base64.b64encode(b"\x01" + struct.pack(">III", 2, 100_000, 16) + salt + key).decode())
PY
}
admin_password=$(openssl rand -base64 18)
viewer_password=$(openssl rand -base64 18)
printf 'admin operator %s\nviewer viewer %s\n' "$(hash "$admin_password")" "$(hash "$viewer_password")" > dashboard-users
printf 'admin %s\nviewer %s\n' "$admin_password" "$viewer_password" > passwords
# The containers' user reads these through bind mounts; the folder itself (700) keeps others on this machine out.
chmod 644 ./*.pem tokens dashboard-users
chmod 600 ca-key.pem passwords

cat > "$env_file" <<ENV
# Made by deploy/compose/make-secrets.sh. Published ports bind this address; set 0.0.0.0 to serve other machines.
RAFT_PUBLISH_ADDRESS=127.0.0.1
RAFT_DASHBOARD_NODE_TOKEN=$dashboard_token
ENV
chmod 600 "$env_file"
echo "secrets in $out; dashboard sign-in: admin / $admin_password (operator), viewer / $viewer_password (kept in $out/passwords)"
