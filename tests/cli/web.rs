//! Decision links over HTTP on loopback, with email through a real SMTP server: scanners that
//! open every link change nothing, only a POST from the confirmation page decides, a second
//! click and other recipients see who decided, forged and expired links get their own pages,
//! and two people deciding at once record exactly one decision.

use crate::harness::{application, start, tomas};
use crate::mail::decision_links;
use beslut_engine::runtime::Channel;
use beslut_notifications::links::{self, Claims, Purpose};
use std::collections::HashMap;

/// The hidden fields of the confirmation page's form.
fn hidden_fields(html: &str) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    for part in html.split("<input type=\"hidden\" ").skip(1) {
        let attr = |name: &str| {
            part.split(&format!("{name}=\"")).nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_string()
        };
        fields.insert(attr("name"), attr("value"));
    }
    fields
}

/// Opens a link as a person would and confirms it with `form`.
async fn confirm(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let page = client.get(url).send().await.unwrap().text().await.unwrap();
    let mut fields = hidden_fields(&page);
    for (k, v) in form {
        fields.insert(k.to_string(), v.to_string());
    }
    let response = client.post(url).form(&fields).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The links of the first message to `to`, for the action labelled `label`.
fn link_for(messages: &[String], to: &str, label: &str) -> String {
    let message =
        messages.iter().find(|m| m.contains(&format!("To: {to}"))).unwrap_or_else(|| panic!("no mail to {to}"));
    let text = crate::mail::decoded(message);
    let line = text
        .lines()
        .find(|l| l.starts_with(label) && l.contains("/d/"))
        .unwrap_or_else(|| panic!("no {label} link in {text}"));
    decision_links(line).remove(0)
}

const ASSESS: &[(&str, &str)] =
    &[("f_angelagenhet", "hog"), ("f_beredning_bedomning", "Angeläget"), ("f_foreslaget_belopp", "1 000 000")];

#[tokio::test(flavor = "multi_thread")]
async fn scanners_change_nothing_and_one_post_decides_once() {
    let running = start().await;
    let case = running
        .engine
        .start("finansieringsansokan", application(), tomas(&running.engine), Channel::Api, None)
        .await
        .unwrap();
    let mails = running.messages(3).await;
    let client = reqwest::Client::new();
    // A link scanner opens every link of every message: nothing changes.
    for message in &mails {
        for url in decision_links(message) {
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            let page = response.text().await.unwrap();
            let confirms = page.contains("Bekräfta ditt beslut") || page.contains("Lämna över uppgiften");
            assert!(confirms && !page.contains("<script"), "{page}");
        }
    }
    let after_scan = running.engine.case(&case.id).await.unwrap();
    assert_eq!(after_scan.version, case.version, "GET must never change a case");
    // A POST that did not come from the confirmation page (no form token) decides nothing.
    let url = link_for(&mails, "sofia.berg@exempelkommun.se", "Lämna bedömningen");
    let mut forged: Vec<(&str, &str)> = ASSESS.to_vec();
    forged.push(("comment", "automatiskt"));
    let bare = client.post(&url).form(&forged).send().await.unwrap();
    assert_eq!(bare.status(), 422);
    assert_eq!(
        running.engine.case(&case.id).await.unwrap().version,
        case.version,
        "no decision without the page's token"
    );
    // The person confirms: one decision.
    let (status, page) = confirm(&client, &url, ASSESS).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Tack, ditt beslut är registrerat"), "{page}");
    let decided = running.engine.case(&case.id).await.unwrap();
    assert_eq!(decided.tasks[0].decision.as_ref().unwrap().by, "sofia-berg");
    // A second click, and another recipient's link to the same task, show who decided.
    let again = client.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(again.contains("redan avgjord") && again.contains("Sofia Berg"), "{again}");
    let other = link_for(&mails, "ahmed.yusuf@exempelkommun.se", "Lämna bedömningen");
    let page = client.get(&other).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("redan avgjord"), "{page}");
    let audit = beslut_engine::store::audit::entries(&running.engine.store.pool, &case.id).await.unwrap();
    let decision = audit.iter().find(|e| e.what == "task.decided").unwrap();
    assert_eq!(decision.channel, "email_link");
    assert_eq!(decision.detail["origin"]["address"], "sofia.berg@exempelkommun.se");
    assert_eq!(
        decision.detail["origin"]["page_sha256"].as_str().map(str::len),
        Some(64),
        "the text shown is recorded by hash"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_recipients_posting_at_once_record_one_decision() {
    let running = start().await;
    let case = running
        .engine
        .start("finansieringsansokan", application(), tomas(&running.engine), Channel::Api, None)
        .await
        .unwrap();
    let mails = running.messages(3).await;
    let client = reqwest::Client::new();
    let a = link_for(&mails, "sofia.berg@exempelkommun.se", "Lämna bedömningen");
    let b = link_for(&mails, "elin.sandberg@exempelkommun.se", "Lämna bedömningen");
    let (ra, rb) = tokio::join!(confirm(&client, &a, ASSESS), confirm(&client, &b, ASSESS));
    let thanks = [&ra.1, &rb.1].iter().filter(|p| p.contains("Tack")).count();
    assert_eq!(thanks, 1, "{} / {}", ra.1, rb.1);
    let stored = running.engine.case(&case.id).await.unwrap();
    assert_eq!(stored.tasks.iter().filter(|t| t.decision.is_some()).count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_truncated_and_expired_links_get_their_own_pages() {
    let running = start().await;
    let case = running
        .engine
        .start("finansieringsansokan", application(), tomas(&running.engine), Channel::Api, None)
        .await
        .unwrap();
    let mails = running.messages(3).await;
    let client = reqwest::Client::new();
    let url = link_for(&mails, "sofia.berg@exempelkommun.se", "Lämna bedömningen");
    for broken in [
        format!("{}x", &url[..url.len() - 1]),
        url[..url.len() - 10].to_string(),
        format!("{}/d/hittepa", running.base),
    ] {
        let response = client.get(&broken).send().await.unwrap();
        assert_eq!(response.status(), 404, "{broken}");
        assert!(!response.text().await.unwrap().contains("fin-"), "nothing about the case is revealed");
    }
    // A genuine link past its expiry offers a fresh one to the same address.
    let claims = Claims {
        purpose: Purpose::Decide,
        case: case.id.clone(),
        task: case.tasks[0].id.clone(),
        recipient: "sofia.berg@exempelkommun.se".into(),
        action: "overlamna".into(),
        expires: jiff::Timestamp::now().as_second() - 60,
        nonce: links::nonce(),
    };
    let expired = format!("{}/d/{}", running.base, links::sign(&running.secret, &claims));
    let response = client.get(&expired).send().await.unwrap();
    assert_eq!(response.status(), 410);
    assert!(response.text().await.unwrap().contains("s…@exempelkommun.se"));
    let renewed = client.post(format!("{expired}/ny-lank")).send().await.unwrap();
    assert_eq!(renewed.status(), 200);
    let more = running.messages(4).await;
    assert!(
        more.iter().filter(|m| m.contains("To: sofia.berg@exempelkommun.se")).count() >= 2,
        "a fresh link was mailed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_is_handed_over_from_its_email() {
    let running = start().await;
    let case = running
        .engine
        .start("finansieringsansokan", application(), tomas(&running.engine), Channel::Api, None)
        .await
        .unwrap();
    let mails = running.messages(3).await;
    let client = reqwest::Client::new();
    let handover = link_for(&mails, "sofia.berg@exempelkommun.se", "Lämna över till en kollega");
    let page = client.get(&handover).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Lämna över uppgiften") && page.contains("Amira Haddad"), "{page}");
    // No colleague chosen: the page says so and nothing changes.
    let (status, _) = confirm(&client, &handover, &[("comment", "Du kan detta bäst")]).await;
    assert_eq!(status, 422);
    let (status, page) = confirm(&client, &handover, &[("to", "amira-haddad"), ("comment", "Du kan detta bäst")]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Amira Haddad"), "{page}");
    let stored = running.engine.case(&case.id).await.unwrap();
    let amira = stored.tasks[0]
        .assignees
        .iter()
        .find(|a| a.party.person.as_deref() == Some("amira-haddad"))
        .expect("Amira holds the task");
    assert_eq!(amira.on_behalf_of.as_deref(), Some("sofia-berg"));
    // Sofia's links no longer work; Amira gets links of her own.
    let old = link_for(&mails, "sofia.berg@exempelkommun.se", "Lämna bedömningen");
    let page = client.get(&old).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("lämnats över"), "{page}");
    let more = running.messages(5).await;
    let own = link_for(&more, "amira.haddad@exempelkommun.se", "Lämna bedömningen");
    let (status, page) = confirm(&client, &own, ASSESS).await;
    assert_eq!(status, 200, "{page}");
    let decided = running.engine.case(&case.id).await.unwrap();
    let decision = decided.tasks[0].decision.clone().unwrap();
    assert_eq!((decision.by.as_str(), decision.on_behalf_of.as_deref()), ("amira-haddad", Some("sofia-berg")));
}

/// The recorder must be in place before the first request: it was installed by the first
/// scrape, so that scrape was empty and every request before it went uncounted.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_scrape_of_metrics_counts_the_requests_before_it() {
    let server = start().await;
    let health = reqwest::get(format!("{}/healthz", server.base)).await.unwrap();
    assert_eq!(health.status(), 200);
    let text = reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    assert!(text.contains("beslut_outbox_depth{kind=\"email\"} 0"), "{text}");
    assert!(text.contains("beslut_http_request_duration_seconds_count{"), "{text}");
}
