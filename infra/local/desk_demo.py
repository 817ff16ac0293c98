#!/usr/bin/env python3
"""The desk's sign-in for a local run: a Cognito user pool and app client in the emulator, and a demo
agent (admin of every app in the registry file) with a fresh random password.

Prints shell `export` lines on stdout: DESK_USER_POOL_ID, DESK_CLIENT_ID, DESK_ISSUER (the issuer the
pool's tokens carry), DESK_JWKS_URL (the emulator's JWKS for the pool), DESK_DEMO_USER,
DESK_DEMO_PASSWORD; progress goes to stderr. Needs AWS_ENDPOINT_URL (never talks to real AWS) and
DESK_TABLE (from seed.py). Usage (as infra/local/dev.sh does):

    eval "$(.venv/bin/python infra/local/desk_demo.py --apps infra/local/apps.json)"
"""

import argparse
import json
import os
import secrets
import shlex
import sys

import boto3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", required=True, help="the app registry file (the demo agent serves its apps)")
    ap.add_argument("--user", default="demo-agent", help="the demo agent's user name (default: demo-agent)")
    args = ap.parse_args()
    endpoint, table = os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("DESK_TABLE")
    if not endpoint or not table:
        ap.error("AWS_ENDPOINT_URL and DESK_TABLE must be set (run seed.py first)")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="test", aws_secret_access_key="test")
    cognito, ddb = boto3.client("cognito-idp", **kw), boto3.client("dynamodb", **kw)

    pool = cognito.create_user_pool(PoolName="kefu-dev-desk")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="kefu-dev-desk-page",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
    # The pool's default policy wants upper and lower case, a digit and a symbol: the fixed part
    # guarantees each whatever the random part holds.
    password = "Demo-" + secrets.token_urlsafe(12) + "7a"
    cognito.admin_create_user(UserPoolId=pool, Username=args.user, MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": f"{args.user}@example.test"}])
    cognito.admin_set_user_password(UserPoolId=pool, Username=args.user, Password=password, Permanent=True)
    sub = next(a["Value"] for a in cognito.admin_get_user(UserPoolId=pool, Username=args.user)["UserAttributes"]
               if a["Name"] == "sub")

    apps = [f"{a['platform']}#{a['app_id']}" for a in json.load(open(args.apps)).get("apps", [])]
    ddb.put_item(TableName=table, Item={
        "pk": {"S": f"agent#{sub}"}, "sk": {"S": "profile"}, "name": {"S": "Demo Agent"},
        "apps": {"M": {app: {"S": "admin"} for app in apps}}, "capacity": {"N": "5"}, "active": {"N": "0"},
        "auto_accept": {"BOOL": False}, "agent_status": {"S": "offline"}, "heartbeat_at": {"N": "0"}})
    for app in apps:
        ddb.put_item(TableName=table, Item={"pk": {"S": f"app#{app}"}, "sk": {"S": f"agent#{sub}"},
                                            "agent": {"S": sub}, "role": {"S": "admin"}})
    print(f"desk: user pool {pool}, demo agent {args.user} (admin of {len(apps)} apps)", file=sys.stderr)
    exports = {
        "DESK_USER_POOL_ID": pool,
        "DESK_CLIENT_ID": client,
        "DESK_ISSUER": f"https://cognito-idp.{region}.amazonaws.com/{pool}",
        "DESK_JWKS_URL": f"{endpoint.rstrip('/')}/{pool}/.well-known/jwks.json",
        "DESK_DEMO_USER": args.user,
        "DESK_DEMO_PASSWORD": password,
    }
    for k, v in exports.items():
        print(f"export {k}={shlex.quote(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
