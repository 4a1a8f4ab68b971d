//! Workloads against any [`Upstream`], for the tests and the benchmark: a number of tasks, each
//! sending its share of the requests one after another, all on the current tokio runtime.

use tokio::task::JoinSet;

use crate::{Error, Reply, Request, Upstream};

/// `requests` GETs of `path` from `tasks` tasks at once, each sending its share in sequence, so
/// at most `tasks` are in flight (fewer when the client caps them). Every reply, or the first
/// error.
pub async fn run<U: Upstream>(
    client: &U,
    path: &str,
    requests: usize,
    tasks: usize,
) -> Result<Vec<Reply>, Error> {
    let tasks = tasks.clamp(1, requests.max(1));
    let mut set = JoinSet::new();
    for task in 0..tasks {
        let share = requests / tasks + usize::from(task < requests % tasks);
        let client = client.clone();
        let path = path.to_owned();
        set.spawn(async move {
            let mut replies = Vec::with_capacity(share);
            for _ in 0..share {
                replies.push(client.send(Request::get(path.clone())).await?);
            }
            Ok::<_, Error>(replies)
        });
    }
    let mut replies = Vec::with_capacity(requests);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(result) => replies.extend(result?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => unreachable!("workload tasks are never cancelled"),
        }
    }
    Ok(replies)
}
