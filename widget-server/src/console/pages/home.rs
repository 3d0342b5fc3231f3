//! `GET /`: what the service is and the way in for porteurs.

use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::Params;
use crate::console::layout::notice;
use crate::console::Ctx;

#[derive(Deserialize, Default)]
pub struct InfoQuery {
    info: Option<String>,
}

/// The service's home page.
pub async fn home_get(ctx: Ctx, Params(q): Params<InfoQuery>) -> Response {
    let operator = &ctx.console.settings.operator_name;
    let signed_in = ctx.viewer.account().is_some();
    let main = html! {
        (notice(q.info.as_deref()))
        h1 { "Je donne mon avis" }
        p.administration { (operator) " recueille l'avis des usagers à la fin des démarches en ligne des administrations." }
        div.grille {
            section.carte {
                h2 { "Usagers" }
                p { "À la fin d'une démarche en ligne, le bouton «\u{a0}Je donne mon avis\u{a0}» vous permet de dire en une minute comment elle s'est passée\u{a0}: c'était facile\u{a0}? le langage était-il clair\u{a0}? avez-vous eu besoin d'aide\u{a0}?" }
                p { "Vos réponses sont anonymes. Elles aident les administrations à simplifier leurs démarches." }
            }
            section.carte {
                h2 { "Observatoire" }
                p { "La satisfaction des usagers de chaque démarche sur les 12 derniers mois, et ses critères de qualité\u{a0}: réalisable en ligne, FranceConnect, compatible mobile, support usager, disponibilité." }
                p { a href="/observatoire" { "Consulter l'observatoire" } }
            }
            section.carte {
                h2 { "Espace porteurs" }
                p { "Vous êtes responsable d'une démarche en ligne\u{a0}? Déclarez-vous porteur de votre démarche, intégrez le bouton à la fin de son parcours et suivez en direct la satisfaction de ses usagers." }
                @if signed_in {
                    p { a.bouton href="/console" { "Accéder à mes démarches" } }
                } @else {
                    ul.liens {
                        li { a href="/connexion" { "Se connecter" } }
                        li { a href="/inscription" { "Créer un compte porteur" } }
                    }
                    p.indication { "Les comptes des adresses en .gouv.fr sont actifs dès l'adresse confirmée\u{a0}; les autres sont validés par un administrateur." }
                }
            }
        }
    };
    ctx.render(StatusCode::OK, "Accueil", main)
}
