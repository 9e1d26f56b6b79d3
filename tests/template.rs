//! Checks `template.yaml` against the repository and the rules the deployment must keep: every
//! crate in `functions/` is a function of the template and the other way round; ingestion has the
//! S3 trigger and the full process the schedule; both buckets are versioned; no S3 permission is
//! granted on `*` and nothing may delete an object; the API's Function URL uses IAM auth. (CI also
//! runs `cfn-lint` and `sam validate`, which check the template's form.)

use std::collections::BTreeSet;
use std::path::Path;

use serde_norway::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn template() -> Value {
    let text = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn resources(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(name, resource)| (name.as_str().unwrap().to_string(), resource.clone()))
        .collect()
}

fn of_type(template: &Value, kind: &str) -> Vec<(String, Value)> {
    resources(template)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .collect()
}

/// The function whose build binary is `binary`.
fn function(template: &Value, binary: &str) -> Value {
    of_type(template, "AWS::Serverless::Function")
        .into_iter()
        .map(|(_, f)| f)
        .find(|f| f["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .unwrap_or_else(|| panic!("no function builds the binary {binary}"))
}

/// A tagged value's inner value (`!Ref X` -> `X`), or the value itself.
fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => &tagged.value,
        other => other,
    }
}

fn strings(value: &Value) -> Vec<String> {
    match untag(value) {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Tagged(tagged) => strings(&tagged.value),
        _ => Vec::new(),
    }
}

/// Every IAM statement anywhere in the template (function policies, bucket and queue policies).
fn statements(value: &Value, found: &mut Vec<Value>) {
    match untag(value) {
        Value::Mapping(map) => {
            for (key, inner) in map {
                if key.as_str() == Some("Statement") {
                    found.extend(inner.as_sequence().into_iter().flatten().cloned());
                } else {
                    statements(inner, found);
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|item| statements(item, found)),
        _ => {}
    }
}

#[test]
fn every_function_crate_is_a_template_function_and_back() {
    let mut crates = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("functions")).unwrap() {
        let path = entry.unwrap().path();
        if path.join("Cargo.toml").is_file() {
            crates.insert(path.file_name().unwrap().to_str().unwrap().to_string());
        }
    }
    let template = template();
    let functions: BTreeSet<String> = of_type(&template, "AWS::Serverless::Function")
        .into_iter()
        .map(|(name, f)| {
            f["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} names no binary"))
                .to_string()
        })
        .collect();
    assert_eq!(
        crates, functions,
        "crates in functions/ vs functions in template.yaml"
    );
    let workspace = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    for name in &crates {
        assert!(
            workspace.contains(&format!("\"functions/{name}\"")),
            "functions/{name} is not a workspace member"
        );
        let runtime = function(&template, name);
        assert_eq!(
            runtime["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name}"
        );
    }
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(strings(&globals["Architectures"]), ["arm64"]);
}

#[test]
fn ingestion_is_triggered_by_csv_uploads_and_the_full_process_by_the_schedule() {
    let template = template();
    let ingestion = function(&template, "ingestion");
    let events = ingestion["Properties"]["Events"].as_mapping().unwrap();
    let s3: Vec<&Value> = events
        .values()
        .filter(|e| e["Type"].as_str() == Some("S3"))
        .collect();
    assert_eq!(s3.len(), 1, "one S3 trigger");
    assert_eq!(
        strings(&s3[0]["Properties"]["Bucket"]),
        ["SourceDataBucket"]
    );
    assert_eq!(
        strings(&s3[0]["Properties"]["Events"]),
        ["s3:ObjectCreated:*"]
    );
    let rules = &s3[0]["Properties"]["Filter"]["S3Key"]["Rules"][0];
    assert_eq!(
        (rules["Name"].as_str(), rules["Value"].as_str()),
        (Some("suffix"), Some(".csv"))
    );

    let fullprocess = function(&template, "fullprocess");
    let events = fullprocess["Properties"]["Events"].as_mapping().unwrap();
    let schedules: Vec<&Value> = events
        .values()
        .filter(|e| matches!(e["Type"].as_str(), Some("Schedule" | "ScheduleV2")))
        .collect();
    assert_eq!(schedules.len(), 1, "one schedule");
    assert_eq!(
        strings(&schedules[0]["Properties"]["ScheduleExpression"]),
        ["ScheduleExpression"]
    );
    assert_eq!(
        template["Parameters"]["ScheduleExpression"]["Default"].as_str(),
        Some("rate(10 minutes)")
    );

    for binary in ["ingestion", "fullprocess"] {
        let properties = &function(&template, binary)["Properties"];
        assert_eq!(
            properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"].as_str(),
            Some("SQS"),
            "{binary} has a dead-letter destination"
        );
        assert_eq!(
            properties["ReservedConcurrentExecutions"].as_u64(),
            Some(1),
            "{binary}"
        );
    }
}

#[test]
fn both_buckets_are_versioned_encrypted_private_and_tls_only() {
    let template = template();
    let buckets = of_type(&template, "AWS::S3::Bucket");
    assert_eq!(buckets.len(), 2);
    for (name, bucket) in &buckets {
        let properties = &bucket["Properties"];
        assert_eq!(
            properties["VersioningConfiguration"]["Status"].as_str(),
            Some("Enabled"),
            "{name}"
        );
        assert!(
            properties["BucketEncryption"].is_mapping(),
            "{name} encryption"
        );
        let block = &properties["PublicAccessBlockConfiguration"];
        for setting in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            assert_eq!(block[setting].as_bool(), Some(true), "{name} {setting}");
        }
        // Lifecycle rules only ever expire noncurrent versions.
        for rule in properties["LifecycleConfiguration"]["Rules"]
            .as_sequence()
            .unwrap()
        {
            assert!(
                rule.get("ExpirationInDays").is_none() && rule.get("ExpirationDate").is_none(),
                "{name}"
            );
        }
        let policy = of_type(&template, "AWS::S3::BucketPolicy")
            .into_iter()
            .find(|(_, p)| strings(&p["Properties"]["Bucket"]) == [name.clone()])
            .unwrap_or_else(|| panic!("{name} has no bucket policy"));
        let statement = &policy.1["Properties"]["PolicyDocument"]["Statement"][0];
        assert_eq!(statement["Effect"].as_str(), Some("Deny"));
        assert_eq!(
            statement["Condition"]["Bool"]["aws:SecureTransport"].as_str(),
            Some("false")
        );
    }
}

#[test]
fn no_s3_permission_on_a_wildcard_resource_and_no_deletes() {
    let template = template();
    let mut found = Vec::new();
    statements(&template["Resources"], &mut found);
    let allows: Vec<&Value> = found
        .iter()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
        .collect();
    assert!(allows.len() >= 8, "every function has its own statements");
    for statement in allows {
        let actions = strings(&statement["Action"]);
        assert!(
            !actions
                .iter()
                .any(|a| a.starts_with("s3:Delete") || a == "s3:*" || a == "*"),
            "delete or wildcard action: {actions:?}"
        );
        if actions.iter().any(|a| a.starts_with("s3:")) {
            let resources = strings(&statement["Resource"]);
            assert!(!resources.is_empty(), "{actions:?} has no resource");
            for resource in resources {
                assert!(
                    resource != "*" && !resource.starts_with("arn:aws:s3:::*"),
                    "{actions:?} on {resource}"
                );
            }
        }
    }
    // SAM policy templates would hide their resources (and S3CrudPolicy grants DeleteObject).
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        for policy in function["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let kinds: Vec<_> = policy
                .as_mapping()
                .into_iter()
                .flat_map(|m| m.keys())
                .collect();
            assert!(
                kinds.iter().all(|k| k.as_str() == Some("Statement")),
                "{name} uses a policy template: {kinds:?}"
            );
        }
    }
}

#[test]
fn the_api_function_url_uses_iam_auth_and_every_function_keeps_its_logs() {
    let template = template();
    let api = function(&template, "api");
    assert_eq!(
        api["Properties"]["FunctionUrlConfig"]["AuthType"].as_str(),
        Some("AWS_IAM")
    );
    let log_groups = of_type(&template, "AWS::Logs::LogGroup");
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        let group = strings(&function["Properties"]["LoggingConfig"]["LogGroup"]);
        assert_eq!(group.len(), 1, "{name} names its log group");
        let (_, resource) = log_groups
            .iter()
            .find(|(id, _)| *id == group[0])
            .unwrap_or_else(|| panic!("{name}: no log group {}", group[0]));
        assert_eq!(
            strings(&resource["Properties"]["RetentionInDays"]),
            ["LogRetentionDays"],
            "{name}"
        );
        let alarmed = of_type(&template, "AWS::CloudWatch::Alarm")
            .into_iter()
            .any(|(_, alarm)| {
                alarm["Properties"]["Dimensions"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|d| strings(&d["Value"]) == [name.clone()])
            });
        assert!(alarmed, "{name} has no error alarm");
    }
}
