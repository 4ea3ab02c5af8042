//! Workers: two notifiers in one group, and a MyPage projector stopped for a while.

use crate::redis_fixture::TestRedis;

use crate::caught_up::*;
use crate::driver::*;
use crate::journeys::*;
use crate::processes::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_notifier_workers_share_the_group_and_each_alarm_goes_out_once() {
    // Scenario 3: `serve --consumers none`, two notifier workers and a MyPage worker.
    let redis = TestRedis::new();
    let (url, prefix) = (redis.url(), redis.prefix().to_owned());
    let dir = logs_dir();
    let mut notifiers = [
        worker(&dir, "notifier-1", "notifier", &url, &prefix),
        worker(&dir, "notifier-2", "notifier", &url, &prefix),
    ];
    let mut mypage = worker(&dir, "mypage", "mypage", &url, &prefix);
    for n in &mut notifiers {
        n.start().await;
    }
    mypage.start().await;
    let only_api = Serve {
        consumers: "none",
        ..Serve::default()
    };
    let mut serve = server(&dir, "serve", &url, &prefix, only_api);
    serve.start().await;
    let d = Driver::new(serve.base());
    let people = customers(&d, 3).await;
    let mut journeys = vec![Journey::Issued; 4];
    journeys.extend([Journey::Contracted; 5]);
    journeys.extend([Journey::Withdrawn; 3]);
    let ids = drive(&d, &people, &journeys).await;

    let [n1, n2] = &notifiers;
    let each = assert_caught_up(&d, &ids, &[n1, n2], Delivery::ExactlyOnce).await;
    assert!(
        serve.delivered_alarms().is_empty(),
        "serve --consumers none sent alarms"
    );
    println!("alarms delivered by notifier-1 and notifier-2: {each:?}");
    assert!(
        each.iter().all(|&n| n > 0),
        "both notifiers should have done some of the work: {each:?}"
    );

    // One notifier hangs (SIGSTOP) and then dies (SIGKILL) while events flow: whatever
    // Redis handed it stays pending under its name until the other takes it over (after
    // --claim-idle), and still every alarm goes out once.
    notifiers[0].pause();
    let mut journeys = vec![Journey::Contracted; 4];
    journeys.extend([Journey::Withdrawn; 2]);
    let second = drive(&d, &people, &journeys).await;
    notifiers[0].kill();
    let all: Vec<String> = ids.iter().chain(&second).cloned().collect();
    let [n1, n2] = &notifiers;
    let after = assert_caught_up(&d, &all, &[n1, n2], Delivery::ExactlyOnce).await;
    assert_eq!(after[0], each[0], "notifier-1 delivered while stopped");
    let took_over = n2
        .log_lines()
        .iter()
        .filter(|l| l.message() == "took over stale entries")
        .count();
    println!(
        "with notifier-1 stopped, then killed: delivered {after:?}; takeovers by notifier-2: \
         {took_over}"
    );

    // The others stop cleanly, as deployments stop them.
    for n in notifiers[1..].iter_mut().chain([&mut mypage]) {
        let status = n.terminate().await;
        assert!(status.success(), "{} exited with {status}", n.name());
    }
    serve.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_mypage_worker_catches_up_when_it_starts_again() {
    let redis = TestRedis::new();
    let (url, prefix) = (redis.url(), redis.prefix().to_owned());
    let dir = logs_dir();
    let with_notifier = Serve {
        consumers: "notifier",
        ..Serve::default()
    };
    let mut serve = server(&dir, "serve", &url, &prefix, with_notifier);
    let mut mypage = worker(&dir, "mypage", "mypage", &url, &prefix);
    mypage.start().await;
    serve.start().await;
    let d = Driver::new(serve.base());
    let people = customers(&d, 2).await;
    let first = drive(&d, &people, &[Journey::Contracted; 3]).await;
    assert_caught_up(&d, &first, &[&serve], Delivery::ExactlyOnce).await;

    // Stopped (SIGTERM): nothing projects while enrollments go on.
    let status = mypage.terminate().await;
    assert!(status.success(), "mypage exited with {status}");
    let second = drive(&d, &people, &[Journey::Contracted; 3]).await;
    d.withdraw(&first[0]).await;
    d.wait_status(&first[0], "Withdrawn").await;
    for id in &second {
        let a = d.get(&format!("/mypage/{id}")).await;
        assert_eq!(a.status, 404, "a view of {id} with no projector running");
    }
    let stale = d.get(&format!("/mypage/{}", first[0])).await;
    assert_eq!(stale.body["status"], "Contracted", "{}", stale.text);

    mypage.start().await;
    let mut all: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_caught_up(&d, &all, &[&serve], Delivery::ExactlyOnce).await;

    // Killed (SIGKILL) this time: the group still knows where it was.
    mypage.kill();
    let third = drive(&d, &people, &[Journey::Issued, Journey::Withdrawn]).await;
    mypage.start().await;
    all.extend(third);
    assert_caught_up(&d, &all, &[&serve], Delivery::ExactlyOnce).await;
    serve.assert_running();
}
