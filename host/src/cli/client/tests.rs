//! Unit tests of the client: argument parsing, bodies, rendering, and
//! commands against a stand-in server.

use super::args::*;
use super::commands::*;
use super::http::*;
use super::render::*;
use crate::wire::TaskDict as Task;
use clap::Subcommand;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::process::ExitCode;
use uuid::Uuid;

/// A wire value as JSON.
fn json_of<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap()
}

impl Task {
    fn from_value(v: &Value) -> anyhow::Result<Task> {
        task_from_value(v)
    }
}

mod t {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        cmd: TestCmd,
    }

    #[derive(Debug, Subcommand)]
    enum TestCmd {
        Task(TaskCommand),
        Node(NodeCommand),
    }

    fn parse(args: &[&str]) -> Result<TestCmd, clap::Error> {
        let mut argv = vec!["drydock"];
        argv.extend_from_slice(args);
        TestCli::try_parse_from(argv).map(|c| c.cmd)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn clap_definition_is_valid() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn filter_for_each_flag_combination() {
        assert_eq!(build_node_filter(&[], &[], None).unwrap(), Value::Null);
        assert_eq!(
            build_node_filter(&strings(&["a", "b"]), &[], None).unwrap(),
            json!({"filter_set_type": "union", "filter_set": [
                {"filter_type": "union", "node_names": ["a", "b"]}]})
        );
        assert_eq!(
            build_node_filter(&[], &strings(&["gpu"]), None).unwrap(),
            json!({"filter_set_type": "union", "filter_set": [
                {"filter_type": "union", "node_tags": ["gpu"]}]})
        );
        assert_eq!(
            build_node_filter(&strings(&["a"]), &strings(&["gpu", "ssd"]), None).unwrap(),
            json!({"filter_set_type": "intersection", "filter_set": [
                {"filter_type": "union", "node_names": ["a"]},
                {"filter_type": "union", "node_tags": ["gpu", "ssd"]}]})
        );
        let raw = r#"{"filter_set_type":"union","filter_set":[{"rack_names":["r1"]}]}"#;
        assert_eq!(
            build_node_filter(&[], &[], Some(raw)).unwrap(),
            serde_json::from_str::<Value>(raw).unwrap()
        );
        assert_eq!(
            build_node_filter(&[], &[], Some("null")).unwrap(),
            Value::Null
        );
        assert!(build_node_filter(&[], &[], Some("[1]")).is_err());
        assert!(build_node_filter(&[], &[], Some("{nope")).is_err());
    }

    #[test]
    fn filter_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, r#"{"filter_set":[{"node_names":["x"]}]}"#).unwrap();
        let arg = format!("@{}", path.display());
        assert_eq!(
            build_node_filter(&[], &[], Some(&arg)).unwrap(),
            json!({"filter_set": [{"node_names": ["x"]}]})
        );
    }

    fn create_args(cmd: TestCmd) -> CreateTaskArgs {
        match cmd {
            TestCmd::Task(TaskCommand {
                command: TaskAction::Create(a),
                ..
            }) => a,
            other => panic!("not task create: {other:?}"),
        }
    }

    #[test]
    fn create_parses_and_builds_the_body() {
        let a = create_args(
            parse(&[
                "task",
                "create",
                "deploy_nodes",
                "--node",
                "a",
                "--node",
                "b",
                "--tag",
                "gpu",
                "--params",
                r#"{"boot":{"device":"disk"}}"#,
                "--design-ref",
                "deckhand+x",
                "--wait",
                "--token",
                "t",
            ])
            .unwrap(),
        );
        assert!(a.wait);
        assert_eq!(
            json_of(task_body(&a).unwrap()),
            json!({
                "action": "deploy_nodes",
                "node_filter": {"filter_set_type": "intersection", "filter_set": [
                    {"filter_type": "union", "node_names": ["a", "b"]},
                    {"filter_type": "union", "node_tags": ["gpu"]}]},
                "design_ref": "deckhand+x",
                "params": {"boot": {"device": "disk"}},
            })
        );
        let a = create_args(parse(&["task", "create", "power_off_node"]).unwrap());
        assert_eq!(
            json_of(task_body(&a).unwrap()),
            json!({"action": "power_off_node", "node_filter": null})
        );
        let a = create_args(parse(&["task", "create", "x", "--params", "[1]"]).unwrap());
        assert!(task_body(&a).is_err());
    }

    #[test]
    fn usage_errors() {
        // --filter replaces --node/--tag.
        assert!(parse(&["task", "create", "x", "--filter", "{}", "--node", "a"]).is_err());
        assert!(parse(&["task", "show", "not-a-uuid"]).is_err());
        assert!(parse(&["task", "list", "--limit", "0"]).is_err());
        assert!(parse(&["task", "create", "x", "--interval-ms", "10"]).is_err());
        // node add needs a name and --oob-type, or --file alone.
        assert!(parse(&["node", "add", "n1"]).is_err());
        assert!(parse(&["node", "add", "--oob-type", "sim"]).is_err());
        assert!(parse(&["node", "add", "--file", "n.json", "--oob-type", "sim"]).is_err());
        assert!(
            parse(&[
                "node",
                "add",
                "n1",
                "--oob-type",
                "sim",
                "--label",
                "novalue"
            ])
            .is_err()
        );
        assert!(parse(&["node", "add", "--file", "n.json", "--username", "root"]).is_ok());
        // There is no password flag.
        assert!(parse(&["node", "add", "n1", "--oob-type", "sim", "--password", "x"]).is_err());
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        for args in [
            &["task", "--json", "--url", "http://h:1", "list"][..],
            &["task", "list", "--json", "--url", "http://h:1"][..],
        ] {
            match parse(args).unwrap() {
                TestCmd::Task(t) => {
                    assert!(t.conn.json);
                    assert_eq!(t.conn.url, "http://h:1");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let c = ConnArgs {
            url: DEFAULT_URL.into(),
            token: Some("s3cr3t-token".into()),
            output: Output::Table,
            json: false,
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let client = c.client().unwrap();
        assert!(!format!("{client:?}").contains("s3cr3t"));
        let none = ConnArgs {
            token: None,
            ..c.clone()
        };
        assert!(
            none.client()
                .unwrap_err()
                .to_string()
                .contains("DRYDOCK_TOKEN")
        );
    }

    #[test]
    fn api_base_urls() {
        assert_eq!(
            api_base("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000/api/v1.0"
        );
        assert_eq!(
            api_base("http://h:9000/").unwrap(),
            "http://h:9000/api/v1.0"
        );
        assert_eq!(
            api_base("https://h/api/v1.0/").unwrap(),
            "https://h/api/v1.0"
        );
        assert_eq!(
            api_base("https://h/drydock").unwrap(),
            "https://h/drydock/api/v1.0"
        );
        assert!(api_base("ftp://h").is_err());
        assert!(api_base("h:9000x").is_err());
        assert!(api_base("http://u:p@h").is_err());
    }

    #[test]
    fn error_bodies_and_exit_codes() {
        let e = http_error(
            StatusCode::NOT_FOUND,
            br#"{"type":"error","message":"task 1 not found","retry":false}"#,
        );
        assert_eq!(e.to_string(), "404 Not Found: task 1 not found");
        assert_eq!(e.exit_code(), ExitCode::from(1));
        assert!(!e.is_transient());
        let e = http_error(StatusCode::UNAUTHORIZED, br#"{"message":"bad token"}"#);
        assert_eq!(e.exit_code(), ExitCode::from(2));
        assert!(e.hint().unwrap().contains("DRYDOCK_TOKEN"));
        assert_eq!(
            http_error(StatusCode::FORBIDDEN, b"").exit_code(),
            ExitCode::from(2)
        );
        let e = http_error(StatusCode::BAD_GATEWAY, b"<html>upstream</html>\n");
        assert_eq!(e.to_string(), "502 Bad Gateway: <html>upstream</html>");
        assert_eq!(e.exit_code(), ExitCode::from(1));
        assert!(e.is_transient());
        let e = http_error(StatusCode::CONFLICT, br#"{"message":"busy","retry":true}"#);
        assert!(e.is_transient());
        assert_eq!(
            http_error(StatusCode::INTERNAL_SERVER_ERROR, b"").to_string(),
            "500 Internal Server Error: Internal Server Error"
        );
        assert_eq!(
            ClientError::Connect("x".into()).exit_code(),
            ExitCode::from(2)
        );
    }

    fn sample_layers() -> Value {
        json!({
            "init_task_id": "11111111-1111-1111-1111-111111111111",
            "11111111-1111-1111-1111-111111111111": {
                "kind": "Task", "task_id": "11111111-1111-1111-1111-111111111111",
                "action": "power_on_node", "parent_task_id": null,
                "subtask_id_list": ["s1", "s2", "s3", "s4"],
                "status": "running",
                "node_filter": null, "design_ref": null,
                "result": {"status": "incomplete", "message": null, "reason": null,
                    "successes": [], "failures": [],
                    "details": {"errorCount": 0, "messageList": []}},
                "created": "2024-05-01T12:00:00.123456Z", "created_by": "admin",
                "updated": null, "terminated": null, "terminated_by": null
            },
            "s1": {"task_id": "s1", "action": "power_on_node",
                "parent_task_id": "11111111-1111-1111-1111-111111111111",
                "subtask_id_list": [], "status": "complete", "node_name": "n1",
                "result": {"status": "success", "message": "power_on_node succeeded",
                    "successes": ["n1"], "failures": [],
                    "details": {"errorCount": 0, "messageList": [
                        {"message": "powered on", "error": false, "context_type": "node",
                         "context": "n1", "ts": "2024-05-01T12:00:02Z"}]}}},
            "s2": {"task_id": "s2", "action": "power_on_node",
                "parent_task_id": "11111111-1111-1111-1111-111111111111",
                "subtask_id_list": null, "status": "complete", "node_name": "n2",
                "result": {"status": "failure", "message": "BMC unreachable",
                    "successes": [], "failures": ["n2"],
                    "details": {"errorCount": 2, "messageList": [
                        {"message": "connect timeout", "error": true, "context_type": "node",
                         "context": "n2", "ts": "2024-05-01T12:00:03Z"},
                        {"message": "BMC unreachable", "error": true, "context_type": "node",
                         "context": "n2", "ts": "2024-05-01T12:00:04Z"}]}}},
            "s3": {"task_id": "s3", "action": "power_on_node",
                "parent_task_id": "11111111-1111-1111-1111-111111111111",
                "status": "running", "node_name": "n3",
                "result": {"status": "incomplete"}}
            // s4 is not in the response yet.
        })
    }

    #[test]
    fn progress_from_a_layers_response() {
        let l = Layers::from_value(&sample_layers()).unwrap();
        assert_eq!(l.total, 4);
        assert_eq!(l.subtasks.len(), 3);
        let p = Progress::of(&l);
        assert_eq!(
            p,
            Progress {
                status: "running".into(),
                result: "incomplete".into(),
                total: 4,
                finished: 2,
                succeeded: strings(&["n1"]),
                failed: strings(&["n2"]),
                done: false,
            }
        );
        assert_eq!(p.message(), "1 succeeded, 1 failed (running)");
        assert_eq!(
            p.line(),
            "running: 2/4 subtasks finished, 1 succeeded, 1 failed"
        );
        assert_eq!(
            failures(&l),
            vec![Failure {
                node: "n2".into(),
                messages: strings(&["BMC unreachable", "connect timeout"]),
            }]
        );
    }

    #[test]
    fn progress_of_ended_and_odd_tasks() {
        let mut v = sample_layers();
        let top = &mut v["11111111-1111-1111-1111-111111111111"];
        top["status"] = json!("terminated");
        top["result"]["status"] = json!("partial_success");
        top["result"]["failures"] = json!(["n2", "n4"]);
        top["result"]["details"]["messageList"] = json!([
            {"message": "cancelled", "error": true, "context": "n4"}]);
        let l = Layers::from_value(&v).unwrap();
        let p = Progress::of(&l);
        assert!(p.done);
        assert_eq!(p.finished, 4);
        assert_eq!(p.failed, strings(&["n2", "n4"]));
        assert!(!l.task.succeeded());
        let f = failures(&l);
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[1],
            Failure {
                node: "n4".into(),
                messages: strings(&["cancelled"])
            }
        );

        // Subtasks found by parent id when the list is empty; no node names.
        let v = json!({"init_task_id": "t", "t": {"task_id": "t", "status": "complete",
                "result": {"status": "success"}},
            "u": {"task_id": "u", "parent_task_id": "t", "status": "complete",
                "result": {"status": "success"}}});
        let l = Layers::from_value(&v).unwrap();
        let p = Progress::of(&l);
        assert_eq!((p.total, p.finished), (1, 1));
        assert_eq!(p.succeeded, strings(&["u"]));
        assert!(l.task.succeeded());

        // A plain task dict (no layers).
        let l = Layers::from_value(&json!({"task_id": "t", "status": "queued",
            "subtask_id_list": ["a", "b"]}))
        .unwrap();
        assert_eq!(Progress::of(&l).total, 2);
        assert!(Layers::from_value(&json!({"init_task_id": "t"})).is_err());
        assert!(Layers::from_value(&json!([1])).is_err());
    }

    #[test]
    fn summary_shows_result_nodes_failures_and_messages() {
        let mut v = sample_layers();
        let top = &mut v["11111111-1111-1111-1111-111111111111"];
        top["status"] = json!("complete");
        top["result"] = json!({"status": "partial_success", "message": "1 of 4 nodes failed",
            "successes": ["n1"], "failures": ["n2"],
            "details": {"errorCount": 1, "messageList": []}});
        top["updated"] = json!("2024-05-01T12:00:05Z");
        let s = format_summary(&Layers::from_value(&v).unwrap());
        let expected = "\
task       11111111-1111-1111-1111-111111111111
action     power_on_node
status     complete
result     partial_success: 1 of 4 nodes failed
created    2024-05-01 12:00:00 by admin
updated    2024-05-01 12:00:05
subtasks   4 (4 finished)
succeeded  n1
failed     n2
failed nodes:
  n2: BMC unreachable
    connect timeout
messages:
  2024-05-01 12:00:02 info  n1: powered on
  2024-05-01 12:00:03 error n2: connect timeout
  2024-05-01 12:00:04 error n2: BMC unreachable
";
        assert_eq!(s, expected);
        let r = format_report(&Layers::from_value(&v).unwrap());
        assert_eq!(
            r,
            "task 11111111-1111-1111-1111-111111111111 complete: partial_success: 1 of 4 nodes failed\n\
             1 succeeded, 1 failed\n\
             failed nodes:\n  n2: BMC unreachable\n    connect timeout\n"
        );
    }

    #[test]
    fn tables() {
        let tasks = vec![
            Task::from_value(&json!({"task_id": "t1", "action": "deploy_nodes",
                "status": "complete", "result": {"status": "success"},
                "created": "2024-05-01T12:00:00Z"}))
            .unwrap(),
            Task::from_value(&json!({"task_id": "t22", "action": "power_on_node",
                "status": "queued", "result": null, "created": null}))
            .unwrap(),
        ];
        assert_eq!(
            format_task_table(&tasks),
            "\
ID   ACTION         STATUS    RESULT   CREATED
t1   deploy_nodes   complete  success  2024-05-01 12:00:00
t22  power_on_node  queued    -        -
"
        );
        let nodes = vec![
            json!({"name": "n1", "oob": {"type": "redfish", "address": "10.0.0.1", "port": 443},
                "power_state": "on", "boot_device": {"device": "pxe", "persistent": false},
                "tags": ["gpu", "ssd"]}),
            json!({"name": "node-two", "oob": {"type": "sim"}, "power_state": null, "tags": []}),
        ];
        assert_eq!(
            format_node_table(&nodes),
            "\
NAME      OOB      ADDRESS       POWER  BOOT  TAGS
n1        redfish  10.0.0.1:443  on     pxe   gpu, ssd
node-two  sim      -             -      -     -
"
        );
        assert_eq!(
            format_node_table(&[]),
            "NAME  OOB  ADDRESS  POWER  BOOT  TAGS\n"
        );
    }

    fn add_args(cmd: TestCmd) -> AddNodeArgs {
        match cmd {
            TestCmd::Node(NodeCommand {
                command: NodeAction::Add(a),
                ..
            }) => *a,
            other => panic!("not node add: {other:?}"),
        }
    }

    #[test]
    fn node_bodies() {
        let a = add_args(
            parse(&[
                "node",
                "add",
                "n1",
                "--oob-type",
                "redfish",
                "--oob-address",
                "10.0.0.1",
                "--oob-port",
                "443",
                "--credential",
                "bmc",
                "--boot-mac",
                "aa:bb:cc:dd:ee:ff",
                "--tag",
                "gpu",
                "--tag",
                "ssd",
                "--label",
                "role=worker",
                "--label",
                "x=a=b",
                "--rack",
                "r1",
                "--username",
                "root",
            ])
            .unwrap(),
        );
        assert_eq!(
            node_body(&a, Some("pw")).unwrap(),
            json!({
                "name": "n1",
                "oob": {"type": "redfish", "address": "10.0.0.1", "port": 443, "credential": "bmc"},
                "boot_mac": "aa:bb:cc:dd:ee:ff",
                "tags": ["gpu", "ssd"],
                "labels": {"role": "worker", "x": "a=b"},
                "rack": "r1",
                "credentials": {"username": "root", "password": "pw"},
            })
        );
        let mut a = add_args(parse(&["node", "add", "n2", "--oob-type", "sim"]).unwrap());
        a.username = None; // DRYDOCK_OOB_USER may be set where tests run.
        assert_eq!(
            node_body(&a, Some("ignored")).unwrap(),
            json!({"name": "n2", "oob": {"type": "sim"}, "tags": [], "labels": {}})
        );
        let mut body = json!({"name": "n3"});
        attach_credentials(&mut body, Some("admin"), None).unwrap();
        assert_eq!(
            body["credentials"],
            json!({"username": "admin", "password": ""})
        );
        assert!(attach_credentials(&mut json!([]), Some("a"), None).is_err());
    }

    // --- against a stand-in server -------------------------------------

    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use axum::routing::{get, post};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn serve(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn conn(url: &str, token: &str) -> ConnArgs {
        ConnArgs {
            url: url.into(),
            token: Some(token.into()),
            output: Output::Table,
            json: false,
        }
    }

    fn authorized(h: &HeaderMap) -> bool {
        h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer good")
    }

    /// A server whose task `TASK` finishes its two subtasks on the third poll
    /// (n1 succeeds, n2 fails).
    const TASK: &str = "11111111-1111-1111-1111-111111111111";

    async fn fake_server() -> String {
        let polls = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route(
                "/api/v1.0/tasks",
                post(|h: HeaderMap, body: axum::Json<Value>| async move {
                    if !authorized(&h) {
                        return (
                            axum::http::StatusCode::UNAUTHORIZED,
                            axum::Json(json!({"type": "error", "message": "bad token", "retry": false})),
                        );
                    }
                    (
                        axum::http::StatusCode::CREATED,
                        axum::Json(json!({"task_id": TASK, "action": body["action"],
                            "status": "queued", "node_filter": body["node_filter"]})),
                    )
                }),
            )
            .route(
                "/api/v1.0/tasks/{id}",
                get(|State(polls): State<Arc<AtomicUsize>>, Path(id): Path<String>| async move {
                    if id != TASK {
                        return (
                            axum::http::StatusCode::NOT_FOUND,
                            axum::Json(json!({"type": "error", "message": "no such task", "retry": false})),
                        );
                    }
                    let n = polls.fetch_add(1, Ordering::SeqCst);
                    let (top, s1, s2) = match n {
                        0 => ("running", "running", "queued"),
                        1 => ("running", "complete", "running"),
                        _ => ("complete", "complete", "complete"),
                    };
                    let result = if top == "complete" { "partial_success" } else { "incomplete" };
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({
                            "init_task_id": TASK,
                            TASK: {"task_id": TASK, "action": "power_on_node", "status": top,
                                "subtask_id_list": ["s1", "s2"],
                                "result": {"status": result, "message": "1 of 2 failed"}},
                            "s1": {"task_id": "s1", "status": s1, "node_name": "n1",
                                "result": {"status": if s1 == "complete" {"success"} else {"incomplete"}}},
                            "s2": {"task_id": "s2", "status": s2, "node_name": "n2",
                                "result": {"status": if s2 == "complete" {"failure"} else {"incomplete"},
                                    "message": "BMC unreachable"}},
                        })),
                    )
                }),
            )
            .with_state(polls);
        serve(app).await
    }

    #[tokio::test]
    async fn create_and_wait_against_a_server() {
        let url = fake_server().await;
        let client = conn(&url, "good").client().unwrap();
        let v = client
            .create_task(
                &serde_json::from_value(json!({"action": "power_on_node", "node_filter": null}))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(json_of(v)["task_id"], TASK);
        let code = run_task(TaskCommand {
            conn: conn(&url, "good"),
            command: TaskAction::Watch {
                id: TASK.parse().unwrap(),
                interval_ms: 10,
            },
        })
        .await
        .unwrap();
        // partial_success → 1.
        assert_eq!(code, ExitCode::FAILURE);
    }

    #[tokio::test]
    async fn http_and_connection_errors_become_exit_codes() {
        let url = fake_server().await;
        let bad = conn(&url, "wrong").client().unwrap();
        match bad
            .create_task(&serde_json::from_value(json!({"action": "x"})).unwrap())
            .await
        {
            Err(e @ ClientError::Http { .. }) => {
                assert_eq!(e.to_string(), "401 Unauthorized: bad token");
                assert_eq!(e.exit_code(), ExitCode::from(2));
            }
            other => panic!("{other:?}"),
        }
        let code = run_task(TaskCommand {
            conn: conn(&url, "good"),
            command: TaskAction::Show { id: Uuid::nil() },
        })
        .await
        .unwrap();
        assert_eq!(code, ExitCode::from(1));

        // Nothing listens on a port just freed.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        let code = run_node(NodeCommand {
            conn: conn(&dead, "good"),
            command: NodeAction::List,
        })
        .await
        .unwrap();
        assert_eq!(code, ExitCode::from(2));
        match conn(&dead, "good").client().unwrap().list_nodes().await {
            Err(e @ ClientError::Connect(_)) => {
                assert!(
                    e.to_string().starts_with("cannot connect to http://"),
                    "{e}"
                );
                assert!(e.is_transient());
            }
            other => panic!("{other:?}"),
        }
    }
}
