//! The integrations page: CSV import and the Zoho Books connection.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use server_fn::error::ServerFnUrlError;

use crate::error::AppError;
use crate::receivables::api::{ImportCsv, import_csv};
use crate::receivables::model::{ImportSummary, UpsertCounts};
use crate::shell::layout::use_session;

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let can_write = use_session().org.role.can_write();
    let upload = Action::new_local(|data: &web_sys::FormData| {
        let data = data.clone();
        async move { import_csv(data.into()).await }
    });
    let query = use_query_map();
    let imported = Memo::new(move |_| {
        query.with(|q| {
            q.get("imported").map(|_| {
                let n = |k: &str| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
                ImportSummary {
                    customers: UpsertCounts {
                        new: n("cn"),
                        updated: n("cu"),
                        unchanged: n("cs"),
                    },
                    invoices: UpsertCounts {
                        new: n("in"),
                        updated: n("iu"),
                        unchanged: n("is"),
                    },
                }
            })
        })
    });
    // Without JavaScript the form posts and the framework sends the error back in the address.
    let posted_error = Memo::new(move |_| {
        query.with(|q| {
            (q.get("__path").as_deref() == Some(<ImportCsv as ServerFn>::PATH))
                .then(|| q.get("__err"))
                .flatten()
                .map(|err| ServerFnUrlError::<AppError>::decode_err(&err))
        })
    });
    let error = Signal::derive(move || {
        upload
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| posted_error.get())
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            if let Some(data) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
                .and_then(|form| web_sys::FormData::new_with_form(&form).ok())
            {
                upload.dispatch_local(data);
            }
        }
    };
    view! {
        <Title text="Integrations" />
        <header class="page-header">
            <h1>"Integrations"</h1>
            <p class="subtitle">"Bring customers and invoices into Duecall."</p>
        </header>
        <div class="grid-2">
            <section class="card" aria-labelledby="csv-heading">
                <h2 id="csv-heading">"Import CSV files"</h2>
                <p class="muted">
                    "Export customers and invoices from any accounting system as CSV. Duecall checks the whole file first: if any row has a problem, nothing is imported and every problem is listed. Importing the same file again only applies what changed."
                </p>
                <p class="templates">
                    "Templates: " <a href="/import/templates/customers.csv" rel="external" download>"customers.csv"</a> " · "
                    <a href="/import/templates/invoices.csv" rel="external" download>"invoices.csv"</a>
                </p>
                {move || imported.get().map(|summary| view! { <ImportResult summary /> })}
                {move || error.get().map(|err| view! { <ImportErrors error=err /> })}
                {if can_write {
                    view! {
                        <form
                            class="form"
                            method="post"
                            enctype="multipart/form-data"
                            action="/api/receivables/import"
                            on:submit=on_submit
                            data-test="import-form"
                        >
                            <label>
                                "Customers file"
                                <input type="file" name="customers" accept=".csv,text/csv" />
                            </label>
                            <label>
                                "Invoices file"
                                <input type="file" name="invoices" accept=".csv,text/csv" />
                                <span class="hint">"Invoices may name customers from the customers file uploaded with them."</span>
                            </label>
                            <div class="form-actions">
                                <button type="submit" class="button primary" disabled=move || upload.pending().get()>
                                    {move || if upload.pending().get() { "Importing…" } else { "Import" }}
                                </button>
                                {move || upload.pending().get().then(|| view! {
                                    <span class="progress" role="status"><span class="spinner" aria-hidden="true"></span>"Uploading and checking every row…"</span>
                                })}
                            </div>
                        </form>
                    }
                    .into_any()
                } else {
                    view! { <p class="muted">"Viewers cannot import. Ask an owner, admin or member."</p> }.into_any()
                }}
            </section>
            <crate::integrations::page::ZohoCard />
        </div>
    }
}

#[component]
fn ImportResult(summary: ImportSummary) -> impl IntoView {
    let line = |what: &str, c: UpsertCounts| {
        format!(
            "{what}: {} new, {} updated, {} unchanged",
            c.new, c.updated, c.unchanged
        )
    };
    view! {
        <div class="alert success" role="status" data-test="import-result">
            <strong>"Import finished."</strong>
            <div>{line("Customers", summary.customers)}</div>
            <div>{line("Invoices", summary.invoices)}</div>
            <a href="/customers">"See customers →"</a>
        </div>
    }
}

#[component]
fn ImportErrors(error: AppError) -> impl IntoView {
    match error {
        AppError::InvalidFile { file, errors } => {
            let shown = errors.len().min(200);
            view! {
                <div class="alert error" role="alert" data-test="import-errors">
                    <strong>{format!("The {file} file has {} problem(s); nothing was imported.", errors.len())}</strong>
                    <div class="table-wrap">
                        <table class="table compact">
                            <thead><tr><th>"Row"</th><th>"Column"</th><th>"Problem"</th></tr></thead>
                            <tbody>
                                {errors.into_iter().take(shown).map(|e| view! {
                                    <tr><td>{e.row}</td><td>{e.column}</td><td>{e.message}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                </div>
            }
            .into_any()
        }
        AppError::Validation(fields) => view! {
            <div class="alert error" role="alert" data-test="import-errors">
                {fields.0.into_iter().map(|f| view! { <div>{f.message}</div> }).collect_view()}
            </div>
        }
        .into_any(),
        other => view! { <div class="alert error" role="alert" data-test="import-errors">{other.to_string()}</div> }.into_any(),
    }
}
