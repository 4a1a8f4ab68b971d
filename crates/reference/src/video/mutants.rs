//! Get-or-create as the field wrote it (seed 003), before and after its "atomic" fix.

use crate::store::Store;

use super::{
    GetOrCreate, Status, Video, VideoError, VideoRegistry, VideoResult, existing, get_or_create, key,
};

/// Seed 003 "before": `get_video_by_id`, and if there is none `create_video` — a read, then an
/// unconditional write. Every request that read "missing" before the first write landed
/// creates the record and processes it. Existing records are handled correctly.
#[derive(Debug, Clone)]
pub struct CheckThenInsert<S> {
    pub store: S,
}

impl<S: Store> VideoRegistry for CheckThenInsert<S> {
    type Store = S;

    fn store(&self) -> &S {
        &self.store
    }

    async fn get_or_create(&self, user: &str, url: &str) -> VideoResult<GetOrCreate> {
        let key = key(user, url);
        loop {
            let Some(bytes) = self.store.get(&key).await? else {
                let video = Video::new(user, url);
                self.store.set(&key, video.encode(), None).await?;
                return Ok(GetOrCreate { video, created: true, should_process: true });
            };
            if let Some(found) = existing(&self.store, &key, &bytes).await? {
                return Ok(found);
            }
        }
    }
}

/// Seed 003 "after", `get_or_create_video_atomic`: `SELECT … FOR UPDATE`, then decide from the
/// status read. The lock is taken on a row that may not exist yet (it locks nothing; the unique
/// constraint and the `IntegrityError` re-read are what make creation safe), and on an existing
/// failed row it is released without writing anything: every concurrent retry reads `failed`
/// and is told to process. A pending row falls through to the insert, which conflicts.
#[derive(Debug, Clone)]
pub struct SelectForUpdate<S> {
    pub store: S,
}

impl<S: Store> VideoRegistry for SelectForUpdate<S> {
    type Store = S;

    fn store(&self) -> &S {
        &self.store
    }

    async fn get_or_create(&self, user: &str, url: &str) -> VideoResult<GetOrCreate> {
        let key = key(user, url);
        if let Some(bytes) = self.store.get(&key).await? {
            let video = Video::decode(&key, &bytes)?;
            match video.status {
                Status::Completed | Status::Processing => {
                    return Ok(GetOrCreate { video, created: false, should_process: false });
                }
                Status::Failed => return Ok(GetOrCreate { video, created: false, should_process: true }),
                Status::Pending => {}
            }
        }
        let fresh = Video::new(user, url);
        if self.store.compare_and_set(&key, None, fresh.encode(), None).await? {
            return Ok(GetOrCreate { video: fresh, created: true, should_process: true });
        }
        // IntegrityError: another request created it; read it back and do not process.
        let bytes = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| VideoError::NotFound { user: user.to_owned(), url: url.to_owned() })?;
        Ok(GetOrCreate { video: Video::decode(&key, &bytes)?, created: false, should_process: false })
    }
}

/// Transitions as a plain `UPDATE videos SET status = … WHERE id = …`: no `AND status = …`, so
/// the state machine is not enforced (a completed video can be started again) and concurrent
/// transitions all "succeed", the last write winning. Get-or-create is the correct one.
#[derive(Debug, Clone)]
pub struct UnconditionalUpdate<S> {
    pub store: S,
}

impl<S: Store> UnconditionalUpdate<S> {
    async fn update(&self, user: &str, url: &str, to: Status) -> VideoResult<Video> {
        let key = key(user, url);
        let Some(bytes) = self.store.get(&key).await? else {
            return Err(VideoError::NotFound { user: user.to_owned(), url: url.to_owned() });
        };
        let video = Video { status: to, ..Video::decode(&key, &bytes)? };
        self.store.set(&key, video.encode(), None).await?;
        Ok(video)
    }
}

impl<S: Store> VideoRegistry for UnconditionalUpdate<S> {
    type Store = S;

    fn store(&self) -> &S {
        &self.store
    }

    async fn get_or_create(&self, user: &str, url: &str) -> VideoResult<GetOrCreate> {
        get_or_create(&self.store, user, url).await
    }

    async fn start(&self, user: &str, url: &str) -> VideoResult<Video> {
        self.update(user, url, Status::Processing).await
    }

    async fn complete(&self, user: &str, url: &str) -> VideoResult<Video> {
        self.update(user, url, Status::Completed).await
    }

    async fn fail(&self, user: &str, url: &str) -> VideoResult<Video> {
        self.update(user, url, Status::Failed).await
    }
}
