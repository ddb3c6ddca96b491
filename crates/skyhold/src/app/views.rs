//! Saved views: named searches, per user.

use super::{Action, Actor, App, Object};
use crate::error::AppError;
use skyhold_core::{now_millis, ViewId};
use skyhold_store::SavedView;

impl App {
    pub async fn views(&self, actor: &Actor) -> Result<Vec<SavedView>, AppError> {
        self.authorize(actor, Action::ManageOwnViews, Object::None)
            .await?;
        Ok(self.store.list_views(actor.user_id).await?)
    }

    /// One of the actor's saved views, by name.
    pub async fn view(&self, actor: &Actor, name: &str) -> Result<SavedView, AppError> {
        self.authorize(actor, Action::ManageOwnViews, Object::None)
            .await?;
        self.store
            .view_by_name(actor.user_id, name.trim())
            .await
            .map_err(|e| match e {
                skyhold_store::StoreError::NotFound => {
                    AppError::NotFound(format!("view {:?}", name.trim()))
                }
                other => other.into(),
            })
    }

    /// Saves a named search for the actor. The query must parse (errors
    /// name the offending token); names are unique per user.
    pub async fn save_view(
        &self,
        actor: &Actor,
        name: &str,
        query: &str,
    ) -> Result<SavedView, AppError> {
        self.authorize(actor, Action::ManageOwnViews, Object::None)
            .await?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(AppError::bad_parameter(
                "name",
                "use 1-64 characters, no control characters",
            ));
        }
        let query = query.trim();
        if query.is_empty() {
            return Err(AppError::bad_parameter("q", "a view needs a search"));
        }
        skyhold_core::search::parse(query, now_millis())
            .map_err(|e| AppError::bad_parameter("q", e.to_string()))?;
        Ok(self
            .store
            .create_view(actor.user_id, name, query, now_millis())
            .await?)
    }

    pub async fn delete_view(&self, actor: &Actor, id: ViewId) -> Result<(), AppError> {
        self.authorize(actor, Action::ManageOwnViews, Object::None)
            .await?;
        self.store
            .delete_view(actor.user_id, id)
            .await
            .map_err(|e| match e {
                skyhold_store::StoreError::NotFound => AppError::NotFound(format!("view {id}")),
                other => other.into(),
            })
    }
}
