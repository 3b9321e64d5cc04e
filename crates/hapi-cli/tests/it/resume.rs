//! `--resume`: an interrupted download to a file continues without fetching its
//! finished pieces again, and ends equal to one request.

use crate::data::{expected, pair};
use crate::support::{DATASET, Fault, Proxy, START, STOP, hapi};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_resumes() {
    let (limited, raised) = pair().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("day.csv");
    let out_s = out.to_str().unwrap();
    let part = dir.path().join("day.csv.hapi-part");
    let want = expected(&limited, &raised, &format!("start={START}&stop={STOP}&include=header")).await;
    // Five pieces pass, then every answer is cut: the run fails after its retries.
    let mut plan = vec![Fault::Pass; 5];
    plan.push(Fault::Cut);
    let broken = Proxy::start(limited.addr, plan).await;
    let server = broken.hapi();
    let args = |server: &str| {
        vec![
            "data".to_owned(),
            DATASET.into(),
            "--start".into(),
            START.into(),
            "--stop".into(),
            STOP.into(),
            "--include-header".into(),
            "-o".into(),
            out_s.into(),
            "--server".into(),
            server.into(),
            "--parallel".into(),
            "1".into(),
            "--retries".into(),
            "0".into(),
            "-v".into(),
        ]
    };
    let a: Vec<String> = args(&server);
    let r = hapi(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("run the same command with --resume"), "{}", r.stderr);
    assert!(part.is_file(), "the state stays beside the file");
    let written = std::fs::read(&out).unwrap();
    assert!(!written.is_empty() && want.starts_with(&written), "what was written is the start of the answer");
    // Bytes past the last state (a piece written but not confirmed) are cut back.
    std::fs::write(&out, [written.as_slice(), b"garbage"].concat()).unwrap();

    // Another request is refused with this state.
    let healthy = &broken;
    healthy.set_plan(vec![Fault::Pass]);
    let before = healthy.faults().len();
    let mut other = args(&server);
    other[5] = "2024-01-01T12:00Z".into();
    other.push("--resume".into());
    let r = hapi(&other.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("belongs to another request"), "{}", r.stderr);
    assert_eq!(healthy.faults().len(), before, "nothing was asked");

    let mut again = args(&server);
    again.push("--resume".into());
    let r = hapi(&again.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read(&out).unwrap() == want, "the resumed file equals one request");
    assert!(!part.exists(), "the state is removed at the end");
    let passed = broken.faults().iter().filter(|f| **f == Fault::Pass).count();
    assert_eq!(
        &broken.faults()[..6],
        &[Fault::Pass, Fault::Pass, Fault::Pass, Fault::Pass, Fault::Pass, Fault::Cut]
    );
    assert_eq!(passed, 70, "no finished piece was fetched again (86,400 s in pieces of 1,250 s)");
    // Nothing left to resume.
    let r = hapi(&again.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nothing to resume"), "{}", r.stderr);
}
