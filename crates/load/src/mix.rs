//! The request mix: accounts set up before the load (a token per instance, a project, videos),
//! the weighted choice of the next request, and its placeholders.

use std::sync::atomic::{AtomicU64, Ordering};

use client::Target;
use profile::load::{Load, MixEntry};
use profile::template::RequestTemplate;
use rand::Rng;
use serde_json::Value;

use crate::LoadError;

/// A user of the target and what it owns.
#[derive(Debug, Clone)]
pub struct Account {
    /// Its token on each instance.
    pub tokens: Vec<String>,
    pub project: Option<String>,
    pub videos: Vec<String>,
}

/// The weighted mix.
#[derive(Debug, Clone)]
pub struct Mix {
    pub entries: Vec<MixEntry>,
    cumulative: Vec<u64>,
    seq: std::sync::Arc<AtomicU64>,
}

impl Mix {
    pub fn new(spec: &Load) -> Self {
        let mut total = 0;
        let cumulative = spec
            .requests
            .iter()
            .map(|e| {
                total += u64::from(e.weight);
                total
            })
            .collect();
        Self { entries: spec.requests.clone(), cumulative, seq: Default::default() }
    }

    /// The index of an entry drawn by weight.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        let total = *self.cumulative.last().unwrap_or(&0);
        let x = rng.random_range(0..total.max(1));
        self.cumulative.partition_point(|&c| c <= x).min(self.entries.len() - 1)
    }

    /// The placeholders of a request by `account`: `{project}`, a random `{video}` of its
    /// own, and a `{unique}`/`{seq}` no other request of the run has.
    pub fn vars(&self, run: &str, account: &Account, rng: &mut impl Rng) -> Vec<(&'static str, String)> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut vars = vec![("seq", seq.to_string()), ("unique", format!("load-{run}-{seq}"))];
        if let Some(project) = &account.project {
            vars.push(("project", project.clone()));
        }
        if !account.videos.is_empty() {
            vars.push(("video", account.videos[rng.random_range(0..account.videos.len())].clone()));
        }
        vars
    }
}

/// Makes `spec.accounts` accounts, their projects and videos.
pub async fn setup(target: &Target, spec: &Load) -> Result<Vec<Account>, LoadError> {
    let mut accounts = Vec::with_capacity(spec.accounts);
    for i in 0..spec.accounts {
        accounts.push(account(target, spec, i).await?);
    }
    Ok(accounts)
}

async fn account(target: &Target, spec: &Load, i: usize) -> Result<Account, LoadError> {
    let user = target.user(&format!("load-{i}")).await?;
    let setup = &spec.setup;
    let project = match &setup.project {
        Some(template) => {
            Some(create(target, &user.tokens[0], template, &setup.project_id, &format!("p{i}")).await?)
        }
        None => None,
    };
    let mut videos = Vec::new();
    if let Some(template) = &setup.video {
        for v in 0..setup.videos {
            let instance = v % target.instances();
            let unique = format!("load-{}-{i}-{v}", target.run);
            let id = create_on(target, instance, &user.tokens[instance], template, &setup.video_id, &unique)
                .await?;
            videos.push(id);
        }
    }
    Ok(Account { tokens: user.tokens, project, videos })
}

async fn create(
    target: &Target,
    token: &str,
    template: &RequestTemplate,
    id: &str,
    unique: &str,
) -> Result<String, LoadError> {
    create_on(target, 0, token, template, id, unique).await
}

async fn create_on(
    target: &Target,
    instance: usize,
    token: &str,
    template: &RequestTemplate,
    id: &str,
    unique: &str,
) -> Result<String, LoadError> {
    let name = format!("{unique}-{}", target.run);
    let answer = target
        .send(instance, Some(token), template, &[("unique", unique), ("name", &name), ("value", &name)])
        .await;
    let setup = |reason: String| LoadError::Setup { url: target.urls[instance].clone(), reason };
    match answer.status {
        Some(s) if (200..300).contains(&s) => {}
        Some(s) => {
            return Err(setup(format!(
                "{} {} answered {s}: {}",
                template.method, template.path, answer.body
            )));
        }
        None => {
            return Err(setup(format!(
                "{} {}: {}",
                template.method,
                template.path,
                answer.error.unwrap_or_default()
            )));
        }
    }
    match answer.body.pointer(id) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(setup(format!("no id at {id} in {}", answer.body))),
    }
}

/// Whether `entry` counts the answer as a success.
pub fn accepted(entry: &MixEntry, status: u16, body: &[u8]) -> bool {
    match &entry.ok {
        None => (200..300).contains(&status),
        Some(recognise) => {
            let needs_body = recognise.pointer.is_some();
            let body =
                if needs_body { serde_json::from_slice(body).unwrap_or(Value::Null) } else { Value::Null };
            recognise.matches(status, &body)
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn spec(weights: &[u32]) -> Load {
        let mut text = String::from("rate = 1.0\n");
        for (i, w) in weights.iter().enumerate() {
            text.push_str(&format!(
                "[[request]]\nname = \"e{i}\"\nweight = {w}\nrequest = {{ method = \"GET\", path = \"/{i}\" }}\n"
            ));
        }
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn entries_are_drawn_in_proportion_to_their_weights() {
        let mix = Mix::new(&spec(&[40, 0, 30, 20, 10]));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut counts = [0u32; 5];
        for _ in 0..100_000 {
            counts[mix.pick(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0, "weight 0 is never drawn");
        for (i, share) in [(0, 0.4), (2, 0.3), (3, 0.2), (4, 0.1)] {
            let got = f64::from(counts[i]) / 100_000.0;
            assert!((got - share).abs() < 0.01, "entry {i}: {got} of draws for weight share {share}");
        }
    }

    #[test]
    fn every_request_gets_its_own_sequence_number() {
        let mix = Mix::new(&spec(&[1]));
        let account = Account { tokens: vec![], project: Some("p".into()), videos: vec!["v1".into()] };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let a = mix.vars("r", &account, &mut rng);
        let b = mix.clone().vars("r", &account, &mut rng);
        assert_ne!(a[0], b[0], "clones share the counter");
        assert!(a.contains(&("project", "p".to_owned())) && a.contains(&("video", "v1".to_owned())));
    }
}
