#!/usr/bin/env python3
"""Seed a running moto_server with realistic, reproducible EC2 data for skyhold.

Every (account, region) pair gets:
  * 3 security groups in the default VPC (web, ssh-bastion, db) with real-looking
    ingress rules (443/80 from the world, 22 from a /24, a port range from
    another group),
  * 2 key pairs (alice-laptop, ci-deploy),
  * N instances launched K at a time with RunInstances, tagged Name / owner /
    env / project / role (owner missing on ~15%), spread over the default
    subnets, a few with extra EBS volumes in BlockDeviceMappings,
  * mixed states: ~25% stopped, ~10% terminated, the rest running,
  * a handful of unattached volumes (gp3 / io1 / st1) with two of them attached
    to running instances,
  * 1-2 own AMIs made with CreateImage from running instances,
  * unless --no-services: a classic LB and an ALB (forwarding to a target group
    with web instances registered), an Auto Scaling group from a launch
    template, 2 RDS instances, 2 DynamoDB tables, a memcached cluster and a
    Redis replication group, a CloudFormation stack (queue + topic), 2 queues
    (one the other's dead-letter queue, with messages), 2 SNS topics (one with
    subscriptions), 2 buckets with objects under prefixes, 3 CloudWatch alarms
    (states set), and once per account 2 Route 53 zones (public with alias,
    CNAME and A records; private).

Acting as an account: moto treats calls signed with the temporary credentials
returned by STS AssumeRole on arn:aws:iam::<ACCOUNT>:role/<role> as coming from
<ACCOUNT>; the base credentials are the dummy testing/testing pair.

Per-(account, region) summary lines go to stderr (unless --quiet); stdout gets
exactly one line, a JSON object with the totals, so callers can parse it.

Usage:
  .venv/bin/python scripts/seed_moto.py --endpoint http://127.0.0.1:5000
  .venv/bin/python scripts/seed_moto.py --endpoint http://127.0.0.1:5000 \
      --instances 500 --reservation-size 1 --accounts 333333333333 --regions us-west-2

Requires only boto3.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

BASE_ACCESS_KEY = "testing"
BASE_SECRET_KEY = "testing"

# "ann" and "group:dev" are the demo's users (scripts/demo creates them).
OWNERS = ["ann", "group:dev", "alice", "bob", "carol", "dave"]
ENVS = ["prod", "staging", "dev"]
ENV_WEIGHTS = [0.45, 0.25, 0.30]
KEY_PAIRS = ["alice-laptop", "ci-deploy"]
KEY_PAIR_OWNERS = {"alice-laptop": "alice", "ci-deploy": "dave"}

# Workload profiles: name pattern, likely instance types, security groups,
# project, weight, whether the AMI is Ubuntu, extra EBS data volume (GiB range).
PROFILES = [
    {"role": "web", "fmt": "web-{:02d}", "types": ["t3.small", "t3.micro", "t3.large", "t2.micro"],
     "sgs": ["web", "ssh-bastion"], "project": ["storefront", "marketing-site"], "w": 5,
     "ubuntu": False, "ebs": None, "key": "alice-laptop"},
    {"role": "api", "fmt": "api-{:02d}", "types": ["m5.large", "t3.large", "c5.xlarge"],
     "sgs": ["web", "ssh-bastion"], "project": ["storefront", "payments"], "w": 4,
     "ubuntu": False, "ebs": None, "key": "ci-deploy"},
    {"role": "worker", "fmt": "worker-{:02d}", "types": ["c5.xlarge", "m5.large", "t3.large"],
     "sgs": ["ssh-bastion"], "project": ["payments", "data-pipeline"], "w": 3,
     "ubuntu": True, "ebs": None, "key": "ci-deploy"},
    {"role": "ci-runner", "fmt": "ci-runner-{}", "types": ["c5.xlarge", "t3.large"],
     "sgs": ["ssh-bastion"], "project": ["platform"], "w": 2,
     "ubuntu": True, "ebs": (50, 200), "key": "ci-deploy"},
    {"role": "db", "fmt": "db-replica-{}", "types": ["r5.large", "m5.large"],
     "sgs": ["db"], "project": ["storefront", "payments"], "w": 2,
     "ubuntu": False, "ebs": (100, 500), "key": "alice-laptop"},
    {"role": "cache", "fmt": "cache-{:02d}", "types": ["r5.large", "t3.small"],
     "sgs": ["db"], "project": ["storefront"], "w": 1,
     "ubuntu": False, "ebs": None, "key": "alice-laptop"},
    {"role": "bastion", "fmt": "bastion-{}", "types": ["t3.micro", "t2.micro"],
     "sgs": ["ssh-bastion"], "project": ["platform"], "w": 1,
     "ubuntu": True, "ebs": None, "key": "alice-laptop"},
    {"role": "batch", "fmt": "batch-{:02d}", "types": ["c5.xlarge", "m5.large", "t3.small"],
     "sgs": ["ssh-bastion"], "project": ["data-pipeline", "analytics"], "w": 2,
     "ubuntu": True, "ebs": (20, 100), "key": "ci-deploy"},
]

VOLUME_NAMES = ["backup", "scratch", "logs-archive", "restore-test", "old-data", "snapshot-staging",
                "postgres-wal", "elastic-data", "tmp-migration", "build-cache"]

SG_SPECS = [
    ("web", "Public web tier: HTTP/HTTPS from anywhere"),
    ("ssh-bastion", "SSH from the office network"),
    ("db", "Database tier: Postgres from web, SSH from bastion"),
]


def parse_csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_accounts(value: str) -> list[str]:
    accts = parse_csv(value)
    for a in accts:
        if not re.fullmatch(r"\d{12}", a):
            raise argparse.ArgumentTypeError(f"not a 12-digit account id: {a!r}")
    if not accts:
        raise argparse.ArgumentTypeError("no accounts given")
    return accts


def parse_regions(value: str) -> list[str]:
    regions = parse_csv(value)
    if not regions:
        raise argparse.ArgumentTypeError("no regions given")
    return regions


def positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return n


def non_negative_int(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def tags(**kv) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in kv.items() if v is not None]


def assume_role(endpoint: str, account: str, role_name: str, cfg: Config) -> dict:
    sts = boto3.client(
        "sts",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=BASE_ACCESS_KEY,
        aws_secret_access_key=BASE_SECRET_KEY,
        config=cfg,
    )
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role_name}",
        RoleSessionName="skyhold-seed",
    )["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def pick_amis(ec2) -> tuple[str, str]:
    """Return (amazon_linux_ami, ubuntu_ami) that exist in this moto region."""

    def newest(pattern: str) -> str | None:
        try:
            imgs = ec2.describe_images(
                Owners=["amazon"], Filters=[{"Name": "name", "Values": [pattern]}]
            )["Images"]
        except ClientError:
            return None
        imgs = [i for i in imgs if i.get("Architecture", "x86_64") == "x86_64"]
        if not imgs:
            return None
        return max(imgs, key=lambda i: (i.get("Name") or "", i["ImageId"]))["ImageId"]

    al = newest("amzn2-ami-hvm-*-x86_64-gp2") or newest("al2023-ami-2023*-x86_64")
    ub = newest("ubuntu/images/hvm-ssd/ubuntu-*-amd64-server-*")
    if al is None and ub is None:
        # Fall back to whatever moto has loaded (slow: ~1300 images).
        imgs = ec2.describe_images(Owners=["amazon"])["Images"] or ec2.describe_images()["Images"]
        x86 = [i for i in imgs if i.get("Architecture", "x86_64") == "x86_64"] or imgs
        if not x86:
            raise RuntimeError("moto returned no AMIs at all for this region")
        al = sorted(x86, key=lambda i: i["ImageId"])[0]["ImageId"]
    return (al or ub), (ub or al)


def ensure_security_groups(ec2, vpc_id: str, account: str) -> tuple[dict[str, str], int]:
    """Create web / ssh-bastion / db (reusing them if present). Returns (name->id, created)."""
    existing = {
        g["GroupName"]: g["GroupId"]
        for g in ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                     {"Name": "group-name", "Values": [n for n, _ in SG_SPECS]}]
        )["SecurityGroups"]
    }
    ids: dict[str, str] = {}
    created = 0
    for name, desc in SG_SPECS:
        if name in existing:
            ids[name] = existing[name]
            continue
        ids[name] = ec2.create_security_group(
            GroupName=name,
            Description=desc,
            VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group",
                                "Tags": tags(Name=name, owner="carol", env="prod", project="platform")}],
        )["GroupId"]
        created += 1

    if created == 0:
        return ids, 0

    rules = {
        "web": [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "HTTPS from anywhere"}],
             "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": "HTTPS from anywhere (v6)"}]},
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "HTTP redirect"}]},
        ],
        "ssh-bastion": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": "office VPN"},
                          {"CidrIp": "198.51.100.17/32", "Description": "alice home"}]},
        ],
        "db": [
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5439,
             "UserIdGroupPairs": [{"GroupId": ids["web"], "UserId": account,
                                   "Description": "postgres + pgbouncer from web tier"}]},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "UserIdGroupPairs": [{"GroupId": ids["ssh-bastion"], "UserId": account,
                                   "Description": "ssh via bastion"}]},
            {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
             "IpRanges": [{"CidrIp": "172.31.0.0/16", "Description": "redis from VPC"}]},
        ],
    }
    for name, perms in rules.items():
        try:
            ec2.authorize_security_group_ingress(GroupId=ids[name], IpPermissions=perms)
        except ClientError as e:
            if e.response["Error"]["Code"] != "InvalidPermission.Duplicate":
                raise
    return ids, created


def ensure_key_pairs(ec2) -> int:
    created = 0
    for name in KEY_PAIRS:
        try:
            ec2.create_key_pair(
                KeyName=name,
                TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags(owner=KEY_PAIR_OWNERS.get(name))}],
            )
            created += 1
        except ClientError as e:
            if e.response["Error"]["Code"] != "InvalidKeyPair.Duplicate":
                raise
    return created


SAMPLE_STACK_TEMPLATE = json.dumps({
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "Order pipeline: a work queue and a notification topic",
    "Parameters": {"Env": {"Type": "String", "Default": "dev"}},
    "Resources": {
        "WorkQueue": {"Type": "AWS::SQS::Queue",
                      "Properties": {"QueueName": {"Fn::Join": ["-", ["pipeline-work", {"Ref": "Env"}]]}}},
        "NotifyTopic": {"Type": "AWS::SNS::Topic",
                        "Properties": {"TopicName": {"Fn::Join": ["-", ["pipeline-notify", {"Ref": "Env"}]]}}},
    },
    "Outputs": {"QueueUrl": {"Description": "Work queue URL", "Value": {"Ref": "WorkQueue"}}},
}, indent=2)


def seed_services(endpoint: str, account: str, region: str, creds: dict, cfg: Config,
                  rng: random.Random, running: list[dict], vpc_id: str, subnets: list[dict],
                  with_global: bool) -> Counter:
    """A couple of each non-EC2 kind, related to the instances where AWS relates them."""
    def client(service: str):
        extra = {}
        if service == "s3":
            extra["config"] = cfg.merge(Config(s3={"addressing_style": "path"}))
        else:
            extra["config"] = cfg
        return boto3.client(service, endpoint_url=endpoint, region_name=region, **creds, **extra)

    stats: Counter = Counter()
    ec2 = client("ec2")
    web_ids = [i["id"] for i in running if i["role"] in ("web", "api")][:4] or \
        [i["id"] for i in running][:2]

    # ---- load balancing + auto scaling ------------------------------------
    elb = client("elb")
    elb.create_load_balancer(
        LoadBalancerName="legacy-web",
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP",
                    "InstancePort": 8080}],
        AvailabilityZones=[subnets[0]["AvailabilityZone"] if subnets else f"{region}a"],
        Tags=tags(owner="alice", env="prod"),
    )
    if web_ids:
        elb.register_instances_with_load_balancer(
            LoadBalancerName="legacy-web", Instances=[{"InstanceId": i} for i in web_ids[:2]])
    stats["load_balancers"] += 1

    elbv2 = client("elbv2")
    lb = elbv2.create_load_balancer(
        Name="storefront-alb", Subnets=[s["SubnetId"] for s in subnets[:2]],
        Tags=tags(owner="bob", env="prod", project="storefront"),
    )["LoadBalancers"][0]
    tg_arns = []
    for name, port in (("storefront-web", 8080), ("storefront-api", 9090)):
        tg = elbv2.create_target_group(
            Name=name, Protocol="HTTP", Port=port, VpcId=vpc_id, TargetType="instance",
            HealthCheckPath="/health", Tags=tags(owner="bob"),
        )["TargetGroups"][0]
        tg_arns.append(tg["TargetGroupArn"])
    if web_ids:
        elbv2.register_targets(TargetGroupArn=tg_arns[0],
                               Targets=[{"Id": i, "Port": 8080} for i in web_ids])
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arns[0]}],
    )
    stats["load_balancers"] += 1
    stats["target_groups"] += len(tg_arns)

    lt_name = f"batch-workers-{region}"
    lt = ec2.create_launch_template(
        LaunchTemplateName=lt_name,
        LaunchTemplateData={"ImageId": pick_amis(ec2)[0], "InstanceType": "t3.small"},
    )["LaunchTemplate"]
    asg = client("autoscaling")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="batch-workers",
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Default"},
        MinSize=1, MaxSize=4, DesiredCapacity=2,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets[:2]),
        TargetGroupARNs=[tg_arns[1]],
        Tags=[{"Key": "owner", "Value": "dave", "PropagateAtLaunch": True},
              {"Key": "project", "Value": "data-pipeline", "PropagateAtLaunch": True}],
    )
    stats["auto_scaling_groups"] += 1

    # ---- databases ---------------------------------------------------------
    rds = client("rds")
    for ident, engine, version, klass, size, owner in (
        ("orders-db", "postgres", "16.3", "db.m5.large", 200, "carol"),
        ("analytics-db", "mysql", "8.0.35", "db.t3.medium", 100, "erin"),
    ):
        rds.create_db_instance(
            DBInstanceIdentifier=ident, Engine=engine, EngineVersion=version,
            DBInstanceClass=klass, AllocatedStorage=size, StorageType="gp3",
            MasterUsername="admin", MasterUserPassword="demo-password-not-real",
            MultiAZ=ident == "orders-db", Tags=tags(owner=owner, env="prod"),
        )
        stats["db_instances"] += 1

    ddb = client("dynamodb")
    for table, billing in (("sessions", "PAY_PER_REQUEST"), ("carts", "PROVISIONED")):
        kwargs = {"ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}} \
            if billing == "PROVISIONED" else {}
        ddb.create_table(
            TableName=table, BillingMode=billing,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            Tags=tags(owner="bob", project="storefront"), **kwargs,
        )
        for n in range(rng.randint(3, 12)):
            ddb.put_item(TableName=table, Item={"pk": {"S": f"{table}-{n}"}, "v": {"N": str(n)}})
        stats["dynamodb_tables"] += 1

    cache = client("elasticache")
    cache.create_cache_cluster(CacheClusterId="sessions-memcached", Engine="memcached",
                               CacheNodeType="cache.t3.small", NumCacheNodes=2,
                               Tags=tags(owner="bob"))
    cache.create_replication_group(ReplicationGroupId="storefront-redis",
                                   ReplicationGroupDescription="Storefront cache (primary + replica)",
                                   Engine="redis", CacheNodeType="cache.t3.medium",
                                   NumCacheClusters=2, Tags=tags(owner="bob"))
    stats["cache_clusters"] += 1
    stats["replication_groups"] += 1

    # ---- messaging -----------------------------------------------------------
    sqs = client("sqs")
    dlq_url = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    orders_url = sqs.create_queue(
        QueueName="orders",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
        tags={"owner": "carol", "project": "payments"},
    )["QueueUrl"]
    for n in range(rng.randint(2, 9)):
        sqs.send_message(QueueUrl=orders_url, MessageBody=json.dumps({"order": n}))
    orders_arn = sqs.get_queue_attributes(QueueUrl=orders_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stats["queues"] += 2

    sns = client("sns")
    topic = sns.create_topic(Name="ops-alerts", Attributes={"DisplayName": "Ops alerts"},
                             Tags=tags(owner="dave"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=orders_arn)
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    sns.create_topic(Name="order-events", Tags=tags(owner="carol"))
    stats["topics"] += 2

    # ---- cloudformation ----------------------------------------------------
    cfn = client("cloudformation")
    cfn.create_stack(StackName="order-pipeline", TemplateBody=SAMPLE_STACK_TEMPLATE,
                     Parameters=[{"ParameterKey": "Env", "ParameterValue": "prod"}],
                     Tags=tags(owner="carol"))
    stats["stacks"] += 1

    # ---- s3 ----------------------------------------------------------------
    s3 = client("s3")
    for purpose in ("assets", "logs"):
        name = f"{purpose}-{account}-{region}"
        kwargs = {} if region == "us-east-1" else \
            {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=name, **kwargs)
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags(owner="erin", purpose=purpose)})
        keys = (["index.html", "css/site.css", "img/logo.png", "img/banner.jpg"] if purpose == "assets"
                else [f"app/2026/01/{d:02d}.log" for d in range(1, 6)] + ["app/latest.log"])
        for key in keys:
            s3.put_object(Bucket=name, Key=key, Body=f"{purpose}:{key}\n".encode() * rng.randint(1, 50))
        stats["buckets"] += 1

    # ---- cloudwatch --------------------------------------------------------
    cw = client("cloudwatch")
    for idx, iid in enumerate(web_ids[:2]):
        name = f"cpu-high-{iid}"
        cw.put_metric_alarm(
            AlarmName=name, AlarmDescription="CPU above 80% for 10 minutes",
            Namespace="AWS/EC2", MetricName="CPUUtilization", Statistic="Average",
            Dimensions=[{"Name": "InstanceId", "Value": iid}], Period=300, EvaluationPeriods=2,
            Threshold=80.0, ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
        )
        cw.set_alarm_state(AlarmName=name, StateValue="ALARM" if idx == 0 else "OK",
                           StateReason="Threshold crossed: 2 datapoints > 80" if idx == 0
                           else "Back to normal")
        stats["alarms"] += 1
    cw.put_metric_alarm(
        AlarmName="orders-dlq-not-empty", Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible", Statistic="Maximum",
        Dimensions=[{"Name": "QueueName", "Value": "orders-dlq"}], Period=60, EvaluationPeriods=1,
        Threshold=0.0, ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
    )
    stats["alarms"] += 1

    # ---- route 53 (global: once per account) -------------------------------
    if with_global:
        r53 = client("route53")
        zone_name = f"demo-{account}.example.com."
        zone = r53.create_hosted_zone(Name=zone_name, CallerReference=f"skyhold-demo-{account}",
                                      HostedZoneConfig={"Comment": "Public storefront zone",
                                                        "PrivateZone": False})["HostedZone"]
        changes = [
            {"Action": "UPSERT", "ResourceRecordSet": {
                "Name": f"shop.{zone_name}", "Type": "A",
                "AliasTarget": {"HostedZoneId": lb.get("CanonicalHostedZoneId", "Z35SXDOTRQ7X7K"),
                                "DNSName": lb["DNSName"], "EvaluateTargetHealth": False}}},
            {"Action": "UPSERT", "ResourceRecordSet": {
                "Name": f"www.{zone_name}", "Type": "CNAME", "TTL": 300,
                "ResourceRecords": [{"Value": f"shop.{zone_name}"}]}},
        ]
        described = ec2.describe_instances(InstanceIds=web_ids[:1])["Reservations"] if web_ids else []
        ip = next((i.get("PublicIpAddress") for r in described for i in r["Instances"]
                   if i.get("PublicIpAddress")), None)
        if ip:
            changes.append({"Action": "UPSERT", "ResourceRecordSet": {
                "Name": f"bastion.{zone_name}", "Type": "A", "TTL": 60,
                "ResourceRecords": [{"Value": ip}]}})
        r53.change_resource_record_sets(HostedZoneId=zone["Id"], ChangeBatch={"Changes": changes})
        r53.create_hosted_zone(Name=f"internal-{account}.corp.", CallerReference=f"skyhold-internal-{account}",
                               VPC={"VPCRegion": region, "VPCId": vpc_id},
                               HostedZoneConfig={"Comment": "Private service discovery",
                                                 "PrivateZone": True})
        stats["hosted_zones"] += 2
    return stats


def seed_account_region(endpoint: str, account: str, region: str, creds: dict,
                        args: argparse.Namespace, cfg: Config) -> dict:
    # Independent, reproducible stream per (seed, account, region).
    rng = random.Random(f"{args.seed}:{account}:{region}")
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=region, config=cfg, **creds)
    stats: Counter = Counter()

    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise RuntimeError(f"{account}/{region}: no default VPC in moto")
    vpc_id = vpcs[0]["VpcId"]
    subnets = sorted(
        (s for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
         if s.get("DefaultForAz", True)),
        key=lambda s: s["AvailabilityZone"],
    )
    # Most fleets live in 2-3 AZs.
    subnets = subnets[:3] or subnets

    sg_ids, stats["security_groups"] = ensure_security_groups(ec2, vpc_id, account)
    stats["key_pairs"] = ensure_key_pairs(ec2)
    al_ami, ub_ami = pick_amis(ec2)

    # ---- instances -------------------------------------------------------
    n_total = args.instances
    k = args.reservation_size
    n_res = (n_total + k - 1) // k
    # ~15% of instances (chosen per instance, not per reservation) have no owner tag.
    ownerless = set(rng.sample(range(n_total), round(n_total * 0.15)))
    # Draw workload profiles from a shuffled, weighted "deck" so that even a small
    # run gets a varied mix (plain weighted sampling repeats too much).
    deck: list[dict] = []
    counters: Counter = Counter()
    instances: list[dict] = []  # {"id", "role", "name", "has_ebs"}
    extra_tags: list[tuple[str, list[dict]]] = []  # (instance id, tags)

    launched = 0
    for _ in range(n_res):
        count = min(k, n_total - launched)
        if not deck:
            deck = [p for p in PROFILES for _ in range(p["w"])]
            rng.shuffle(deck)
        prof = deck.pop()
        env = rng.choices(ENVS, weights=ENV_WEIGHTS)[0]
        owner = rng.choice(OWNERS)
        owners = [None if launched + j in ownerless else owner for j in range(count)]
        # The owner goes into the shared TagSpecifications only if every instance has it.
        shared_owner = owner if all(owners) else None
        project = rng.choice(prof["project"])
        itype = rng.choice(prof["types"])
        names = []
        for _ in range(count):
            counters[prof["role"]] += 1
            names.append(prof["fmt"].format(counters[prof["role"]]))
        common = dict(env=env, project=project, role=prof["role"])
        params = dict(
            ImageId=ub_ami if prof["ubuntu"] else al_ami,
            MinCount=count,
            MaxCount=count,
            InstanceType=itype,
            KeyName=prof["key"] if rng.random() < 0.9 else rng.choice(KEY_PAIRS),
            SecurityGroupIds=[sg_ids[g] for g in prof["sgs"]],
            SubnetId=rng.choice(subnets)["SubnetId"] if subnets else None,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": tags(Name=names[0], owner=shared_owner, **common)},
                {"ResourceType": "volume", "Tags": tags(owner=owner, **common)},
            ],
        )
        if params["SubnetId"] is None:
            del params["SubnetId"]
        has_ebs = prof["ebs"] is not None and rng.random() < 0.6
        if has_ebs:
            lo, hi = prof["ebs"]
            params["BlockDeviceMappings"] = [{
                "DeviceName": "/dev/sdf",
                "Ebs": {"VolumeSize": rng.randint(lo, hi), "VolumeType": "gp3",
                        "DeleteOnTermination": prof["role"] != "db", "Encrypted": True},
            }]
        resp = ec2.run_instances(**params)
        stats["reservations"] += 1
        ids = [i["InstanceId"] for i in resp["Instances"]]
        for idx, inst in enumerate(resp["Instances"]):
            iid = inst["InstanceId"]
            instances.append({"id": iid, "role": prof["role"], "name": names[idx], "has_ebs": has_ebs,
                              "az": inst.get("Placement", {}).get("AvailabilityZone")})
            # TagSpecifications is shared by the whole reservation: give the others
            # their own Name (and owner where needed). Never happens with K=1.
            own = {}
            if idx > 0:
                own["Name"] = names[idx]
            if owners[idx] is not None and shared_owner is None:
                own["owner"] = owners[idx]
            if own:
                extra_tags.append((iid, tags(**own)))
        launched += len(ids)

    for iid, tag_list in extra_tags:
        ec2.create_tags(Resources=[iid], Tags=tag_list)

    # ---- states ----------------------------------------------------------
    order = list(range(len(instances)))
    rng.shuffle(order)
    n_term = round(len(instances) * 0.10)
    n_stop = round(len(instances) * 0.25)
    term_ids = [instances[i]["id"] for i in order[:n_term]]
    stop_ids = [instances[i]["id"] for i in order[n_term:n_term + n_stop]]
    running = [instances[i] for i in sorted(order[n_term + n_stop:])]
    batch = 200
    for i in range(0, len(stop_ids), batch):
        ec2.stop_instances(InstanceIds=stop_ids[i:i + batch])
    for i in range(0, len(term_ids), batch):
        ec2.terminate_instances(InstanceIds=term_ids[i:i + batch])
    stats["instances"] = len(instances)
    stats["running"] = len(running)
    stats["stopped"] = len(stop_ids)
    stats["terminated"] = len(term_ids)

    # ---- extra volumes ---------------------------------------------------
    azs = [s["AvailabilityZone"] for s in subnets] or [f"{region}a"]
    n_vols = min(40, max(3, n_total // 8))
    # Two of them get attached to running instances: create those in the target's AZ.
    targets = rng.sample(running, min(2, len(running), n_vols))
    for v in range(n_vols):
        vtype = rng.choices(["gp3", "io1", "st1"], weights=[6, 2, 2])[0]
        kwargs = {}
        if vtype == "st1":
            size = rng.randint(125, 500)  # st1 minimum is 125 GiB
        elif vtype == "io1":
            size = rng.randint(8, 500)
            kwargs["Iops"] = min(50 * size, rng.choice([1000, 3000, 6000]))
        else:
            size = rng.choice([8, 16, 20, 30, 50, 100, 200, 500])
        target = targets[v] if v < len(targets) else None
        az = (target["az"] if target and target["az"] else rng.choice(azs))
        name = f"{rng.choice(VOLUME_NAMES)}-{v + 1:02d}"
        vol = ec2.create_volume(
            AvailabilityZone=az, Size=size, VolumeType=vtype,
            Encrypted=rng.random() < 0.7,
            TagSpecifications=[{"ResourceType": "volume", "Tags": tags(
                Name=name, owner=rng.choice(OWNERS) if rng.random() > 0.15 else None,
                env=rng.choices(ENVS, weights=ENV_WEIGHTS)[0])}],
            **kwargs,
        )
        stats["volumes_created"] += 1
        if target:
            # /dev/sdf may be taken by BlockDeviceMappings; /dev/sdh never is.
            ec2.attach_volume(VolumeId=vol["VolumeId"], InstanceId=target["id"], Device="/dev/sdh")
            stats["volumes_attached"] += 1

    # ---- own AMIs --------------------------------------------------------
    n_images = rng.choice([1, 2]) if running else 0
    for src in rng.sample(running, min(n_images, len(running))):
        img_name = f"{src['role']}-golden-2025.{rng.randint(1, 12):02d}.{rng.randint(1, 28):02d}"
        img_args = dict(
            InstanceId=src["id"], NoReboot=True,
            Description=f"Golden image baked from {src['name']}",
            TagSpecifications=[{"ResourceType": "image",
                                "Tags": tags(Name=f"{src['role']}-golden", owner="carol", env="prod",
                                             project="platform")}],
        )
        try:
            ec2.create_image(Name=img_name, **img_args)
        except ClientError as e:
            # Seeding the same account/region twice: AMI names must be unique.
            if e.response["Error"]["Code"] != "InvalidAMIName.Duplicate":
                raise
            ec2.create_image(Name=f"{img_name}-{src['id'][-6:]}", **img_args)
        stats["images"] += 1

    stats["ebs_in_mappings"] = sum(1 for i in instances if i["has_ebs"])
    if args.services:
        stats.update(seed_services(endpoint, account, region, creds, cfg, rng, running, vpc_id,
                                   subnets, with_global=region == args.regions[0]))
    return dict(stats)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="moto_server URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--accounts", type=parse_accounts, default="111111111111,222222222222",
                    help="comma-separated 12-digit account ids (default: %(default)s)")
    ap.add_argument("--regions", type=parse_regions, default="us-east-1,eu-west-1",
                    help="comma-separated regions (default: %(default)s)")
    ap.add_argument("--instances", type=non_negative_int, default=16,
                    help="instances per (account, region) (default: %(default)s)")
    ap.add_argument("--reservation-size", type=positive_int, default=4,
                    help="instances per RunInstances call (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    ap.add_argument("--role-name", default="skyhold-demo",
                    help="role assumed in every account (default: %(default)s)")
    ap.add_argument("--no-services", dest="services", action="store_false",
                    help="seed EC2 only (no load balancers, databases, queues, buckets, ...)")
    ap.add_argument("--quiet", action="store_true", help="only print the final JSON line")
    args = ap.parse_args()

    cfg = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=120)
    endpoint = args.endpoint.rstrip("/")
    started = time.monotonic()
    totals: Counter = Counter()
    for account in args.accounts:
        creds = assume_role(endpoint, account, args.role_name, cfg)
        for region in args.regions:
            t0 = time.monotonic()
            s = seed_account_region(endpoint, account, region, creds, args, cfg)
            totals.update(s)
            if not args.quiet:
                print(
                    f"{account} {region}: {s.get('instances', 0)} instances "
                    f"({s.get('running', 0)} running, {s.get('stopped', 0)} stopped, "
                    f"{s.get('terminated', 0)} terminated) in {s.get('reservations', 0)} reservations, "
                    f"{s.get('security_groups', 0)} SGs, {s.get('key_pairs', 0)} key pairs, "
                    f"{s.get('volumes_created', 0)} extra volumes ({s.get('volumes_attached', 0)} attached), "
                    f"{s.get('images', 0)} images [{time.monotonic() - t0:.1f}s]",
                    file=sys.stderr, flush=True,
                )

    keys = ["instances", "running", "stopped", "terminated", "reservations", "security_groups",
            "key_pairs", "volumes_created", "volumes_attached", "ebs_in_mappings", "images",
            "load_balancers", "target_groups", "auto_scaling_groups", "db_instances",
            "dynamodb_tables", "cache_clusters", "replication_groups", "stacks", "hosted_zones",
            "queues", "topics", "buckets", "alarms"]
    out = {k: totals.get(k, 0) for k in keys}
    out["accounts"] = len(args.accounts)
    out["regions"] = len(args.regions)
    out["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
