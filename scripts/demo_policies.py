"""The demo's policy scenery, in one account and region of the emulator:

    python scripts/demo_policies.py --endpoint URL --account ID seed
        two instances of ann that expire in a few minutes, an idle one and a
        busy one (CloudWatch datapoints put for the next hour: moto makes
        none), one without any datapoints, and one of bob's to be terminated
        behind skyhold's back;
    python scripts/demo_policies.py --endpoint URL --account ID terminate
        terminates bob's instance outside skyhold (a termination the next
        sync sees only afterwards: the ledger closes it at the transition
        time).

Requires only boto3 (in the project's venv).
"""
import argparse
import datetime as dt
import sys

import boto3
from botocore.config import Config

REGION = "us-east-1"


def clients(endpoint: str, account: str):
    cfg = Config(retries={"max_attempts": 3})
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="testing", aws_secret_access_key="testing", config=cfg)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/skyhold-demo",
                        RoleSessionName="skyhold-demo-policies")["Credentials"]
    creds = dict(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                 aws_session_token=c["SessionToken"])
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=REGION, config=cfg, **creds)
    cw = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=REGION, config=cfg, **creds)
    return ec2, cw


def launch(ec2, name: str, tags: dict) -> str:
    all_tags = [{"Key": "Name", "Value": name}] + [{"Key": k, "Value": v} for k, v in tags.items()]
    r = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": all_tags}])
    return r["Instances"][0]["InstanceId"]


def cpu(cw, instance_id: str, percent: float) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    data = [{
        "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
        "Timestamp": now + dt.timedelta(minutes=m),
        "Value": percent,
    } for m in range(-5, 60)]
    for i in range(0, len(data), 20):
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=data[i:i + 20])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--account", required=True)
    ap.add_argument("what", choices=["seed", "terminate"])
    args = ap.parse_args()
    ec2, cw = clients(args.endpoint, args.account)
    if args.what == "seed":
        soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for n in (1, 2):
            launch(ec2, f"ann-expiring-{n}", {"skyhold:owner": "ann", "skyhold:expires-at": soon})
        cpu(cw, launch(ec2, "ann-idle", {"skyhold:owner": "ann"}), 1.0)
        cpu(cw, launch(ec2, "ann-busy", {"skyhold:owner": "ann"}), 70.0)
        launch(ec2, "ann-no-metrics", {"skyhold:owner": "ann"})
        launch(ec2, "bob-missed", {"skyhold:owner": "bob"})
        print("seeded the policy demo: ann-expiring-1/2 (expire at %s), ann-idle, ann-busy, "
              "ann-no-metrics, bob-missed" % soon)
    else:
        r = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["bob-missed"]}])
        ids = [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
        print("terminated bob-missed behind skyhold's back: %s" % ", ".join(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
