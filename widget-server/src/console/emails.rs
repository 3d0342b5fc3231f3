//! The French e-mails of the console, plain text. Links are absolute, built on `--public-url`.
//!
//! Names typed by users (accounts, démarches, administrations) go to other people's mailboxes:
//! the console refuses names that carry a link or a formula (`pages::name_field`), and a name
//! stored before that rule, unfit to travel, is replaced here by a neutral wording
//! ([`demarche`], [`person`]). Free text (a request's reason) never travels: it is read in the
//! console.

use super::mail::Email;
use super::pages::name_problem;

/// A démarche as a mail names it: « its name » (n° id), or only its number when its name is
/// unfit to travel (it may predate the rules on names).
pub fn demarche(name: &str, id: i64) -> String {
    if name_problem(name).is_some() || name.trim().is_empty() {
        format!("n°\u{a0}{id}")
    } else {
        format!("« {name} » (n°\u{a0}{id})")
    }
}

/// A person's name as a mail gives it, or `fallback` when it is unfit to travel.
pub fn person<'a>(name: &'a str, fallback: &'a str) -> &'a str {
    if name_problem(name).is_some() || name.trim().is_empty() {
        fallback
    } else {
        name
    }
}

fn sign(operator: &str) -> String {
    format!("\n\n-- \nL'équipe {operator}\nCe message est envoyé automatiquement, merci de ne pas y répondre.\n")
}

/// After sign-up: the single-use confirmation link (24 h).
pub fn confirm(operator: &str, public_url: &str, token: &str) -> Email {
    Email {
        subject: format!("Confirmez votre adresse e-mail – {operator}"),
        body: format!(
            "Bonjour,\n\nVous avez demandé un compte porteur sur {operator}. Pour confirmer votre adresse e-mail \
             et choisir votre mot de passe, ouvrez ce lien (valable 24 heures, utilisable une seule fois) :\n\n\
             {public_url}/confirmation?jeton={token}\n\n\
             Si vous avez reçu plusieurs messages, seul le plus récent fonctionne.\n\
             Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : aucun compte ne sera activé.{}",
            sign(operator)
        ),
    }
}

/// Sign-up with an address that already has a confirmed account (the page said nothing).
pub fn already_registered(operator: &str, public_url: &str) -> Email {
    Email {
        subject: format!("Vous avez déjà un compte – {operator}"),
        body: format!(
            "Bonjour,\n\nQuelqu'un a demandé à créer un compte avec cette adresse, qui a déjà un compte : \
             rien n'a été changé.\n\nSi c'était vous, connectez-vous : {public_url}/connexion\n\
             ou, si vous avez oublié votre mot de passe, réinitialisez-le : {public_url}/mot-de-passe-oublie\n\n\
             Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.{}",
            sign(operator)
        ),
    }
}

/// Confirmed, but the domain needs an administrator.
pub fn awaiting_approval(operator: &str) -> Email {
    Email {
        subject: format!("Votre compte attend une validation – {operator}"),
        body: format!(
            "Bonjour,\n\nVotre adresse e-mail est confirmée. Comme elle ne se termine pas par .gouv.fr \
             ni par un domaine autorisé, un administrateur doit valider votre compte. \
             Vous recevrez un e-mail dès qu'il l'aura fait.{}",
            sign(operator)
        ),
    }
}

/// To each administrator: an account waits.
pub fn approval_needed(operator: &str, public_url: &str, name: &str, email: &str, administration: &str) -> Email {
    let (name, administration) = (person(name, "Un agent"), person(administration, "administration à vérifier"));
    Email {
        subject: format!("Un compte attend votre validation – {operator}"),
        body: format!(
            "Bonjour,\n\n{name} ({email}, {administration}) a confirmé son adresse et attend la validation \
             de son compte porteur.\n\nPour l'accepter ou la refuser : {public_url}/console/admin{}",
            sign(operator)
        ),
    }
}

/// An administrator accepted the account.
pub fn approved(operator: &str, public_url: &str) -> Email {
    Email {
        subject: format!("Votre compte est validé – {operator}"),
        body: format!(
            "Bonjour,\n\nUn administrateur a validé votre compte porteur. Vous pouvez vous connecter : \
             {public_url}/connexion{}",
            sign(operator)
        ),
    }
}

/// An administrator refused the account (it is deleted).
pub fn refused(operator: &str) -> Email {
    Email {
        subject: format!("Votre demande de compte n'a pas été acceptée – {operator}"),
        body: format!(
            "Bonjour,\n\nUn administrateur n'a pas validé votre demande de compte porteur, qui a été supprimée. \
             Si vous pensez qu'il s'agit d'une erreur, contactez l'administrateur du service.{}",
            sign(operator)
        ),
    }
}

/// The single-use reset link (2 h).
pub fn reset(operator: &str, public_url: &str, token: &str) -> Email {
    Email {
        subject: format!("Choisissez un nouveau mot de passe – {operator}"),
        body: format!(
            "Bonjour,\n\nPour choisir un nouveau mot de passe, ouvrez ce lien (valable 2 heures, utilisable \
             une seule fois) :\n\n{public_url}/mot-de-passe?jeton={token}\n\n\
             Si vous n'avez rien demandé, ignorez ce message : votre mot de passe ne change pas.{}",
            sign(operator)
        ),
    }
}

/// The password changed from « Mon compte ».
pub fn password_changed(operator: &str, public_url: &str) -> Email {
    Email {
        subject: format!("Votre mot de passe a été changé – {operator}"),
        body: format!(
            "Bonjour,\n\nLe mot de passe de votre compte vient d'être changé : toutes vos autres sessions \
             ont été fermées, et les liens de réinitialisation envoyés avant ne fonctionnent plus.\n\n\
             Si vous n'êtes pas à l'origine de ce changement, choisissez tout de suite \
             un nouveau mot de passe : {public_url}/mot-de-passe-oublie{}",
            sign(operator)
        ),
    }
}

/// The password was set through a reset link: every session ended, every API key revoked.
pub fn password_reset(operator: &str, public_url: &str, keys_revoked: u64) -> Email {
    let keys = match keys_revoked {
        0 => "Votre compte n'avait pas de clé d'API active.".to_string(),
        1 => "Sa clé d'API a été révoquée : créez-en une nouvelle dans « Mon compte » pour vos programmes.".to_string(),
        n => format!(
            "Ses {n} clés d'API ont été révoquées : créez-en de nouvelles dans « Mon compte » pour vos programmes."
        ),
    };
    Email {
        subject: format!("Votre mot de passe a été réinitialisé – {operator}"),
        body: format!(
            "Bonjour,\n\nLe mot de passe de votre compte vient d'être réinitialisé. Toutes les sessions ouvertes \
             sur votre compte ont été fermées. {keys}\n\nMon compte : {public_url}/console/compte\n\n\
             Si vous n'êtes pas à l'origine de ce changement, choisissez tout de suite \
             un nouveau mot de passe : {public_url}/mot-de-passe-oublie{}",
            sign(operator)
        ),
    }
}

/// The account was deleted at its owner's request.
pub fn deleted(operator: &str) -> Email {
    Email {
        subject: format!("Votre compte a été supprimé – {operator}"),
        body: format!("Bonjour,\n\nVotre compte porteur a été supprimé, comme vous l'avez demandé.{}", sign(operator)),
    }
}

/// To each porteur of a démarche (or, when none is left, each administrator): someone asks
/// to carry it. The reason stays in the console (free text never travels by mail).
pub fn porteur_request(
    operator: &str,
    public_url: &str,
    name: &str,
    email: &str,
    demarche_name: &str,
    id: i64,
    to_admin: bool,
) -> Email {
    let d = demarche(demarche_name, id);
    let name = person(name, "Un agent");
    let whom = if to_admin {
        "Elle n'a plus de porteur : en tant qu'administrateur, c'est à vous de répondre."
    } else {
        "Vous en êtes porteur : c'est à vous, ou à un autre de ses porteurs, de répondre."
    };
    Email {
        subject: format!("Demande pour porter la démarche {d} – {operator}"),
        body: format!(
            "Bonjour,\n\n{name} ({email}) demande à devenir porteur de la démarche {d}. {whom}\n\n\
             Le motif de la demande et les boutons pour l'accepter ou la refuser sont dans l'espace porteurs : \
             {public_url}/console/demarches/{id}/porteurs{}",
            sign(operator)
        ),
    }
}

/// To the requester: the request went to the démarche's porteurs (or administrators).
pub fn porteur_request_sent(operator: &str, demarche_name: &str, id: i64) -> Email {
    let d = demarche(demarche_name, id);
    Email {
        subject: format!("Votre demande pour porter la démarche {d} – {operator}"),
        body: format!(
            "Bonjour,\n\nVotre demande pour devenir porteur de la démarche {d} a été transmise. Vous recevrez \
             un e-mail dès qu'un de ses porteurs, ou un administrateur, y aura répondu.{}",
            sign(operator)
        ),
    }
}

/// To the requester: accepted or refused.
pub fn porteur_decision(operator: &str, public_url: &str, demarche_name: &str, id: i64, accepted: bool) -> Email {
    let d = demarche(demarche_name, id);
    let (subject, text) = if accepted {
        (
            "acceptée",
            format!("Vous êtes maintenant porteur de la démarche {d} : {public_url}/console/demarches/{id}/code"),
        )
    } else {
        ("refusée", format!("Votre demande pour devenir porteur de la démarche {d} a été refusée."))
    };
    Email {
        subject: format!("Demande {subject} pour la démarche {d} – {operator}"),
        body: format!("Bonjour,\n\n{text}{}", sign(operator)),
    }
}

/// An invitation to carry a démarche (single-use link, 7 days).
pub fn porteur_invite(
    operator: &str,
    public_url: &str,
    inviter: &str,
    demarche_name: &str,
    id: i64,
    token: &str,
) -> Email {
    let d = demarche(demarche_name, id);
    let inviter = person(inviter, "Un porteur");
    Email {
        subject: format!("Invitation à porter la démarche {d} – {operator}"),
        body: format!(
            "Bonjour,\n\n{inviter} vous invite à devenir porteur de la démarche {d} sur {operator}.\n\n\
             Pour accepter, connectez-vous avec cette adresse (ou créez d'abord un compte : {public_url}/inscription), \
             puis ouvrez ce lien (valable 7 jours, utilisable une seule fois) :\n\n\
             {public_url}/console/invitation?jeton={token}\n\n\
             L'invitation prend fin si elle est annulée, ou si la personne qui l'a envoyée ne porte plus la démarche.{}",
            sign(operator)
        ),
    }
}

/// A merge moved a pending request or a live invitation from the duplicate to the kept démarche.
pub fn merged_into(
    operator: &str,
    public_url: &str,
    duplicate: (&str, i64),
    kept: (&str, i64),
    invitation: bool,
) -> Email {
    let (dup, kept_name, kept_id) = (demarche(duplicate.0, duplicate.1), demarche(kept.0, kept.1), kept.1);
    let what = if invitation {
        "L'invitation que vous avez reçue pour la porter vaut désormais pour la démarche conservée : \
         le lien de l'e-mail d'invitation fonctionne toujours."
    } else {
        "Votre demande pour la porter concerne désormais la démarche conservée et attend toujours une réponse."
    };
    Email {
        subject: format!("La démarche {dup} a été fusionnée – {operator}"),
        body: format!(
            "Bonjour,\n\nUn administrateur a fusionné la démarche {dup}, qui était un doublon, avec la démarche \
             {kept_name}. {what}\n\n{public_url}/console/demarches/{kept_id}{}",
            sign(operator)
        ),
    }
}

/// To each administrator: a démarche declares over 5,000,000 a year.
pub fn high_volume(operator: &str, public_url: &str, demarche_name: &str, id: i64) -> Email {
    let d = demarche(demarche_name, id);
    Email {
        subject: format!("Démarche à fort volume à valider : {d} – {operator}"),
        body: format!(
            "Bonjour,\n\nLa démarche {d} déclare plus de 5 000 000 d'usagers par an. \
             Son bouton reste fermé jusqu'à votre validation : {public_url}/console/admin#fort-volume{}",
            sign(operator)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unfit_to_travel_stay_out_of_mails() {
        let phishing = "URGENT : reconnectez-vous sur https://evil.example/login";
        for mail in [
            porteur_invite("monavis", "https://avis.example", "Marie", phishing, 12, "jeton"),
            porteur_request("monavis", "https://avis.example", phishing, "a@b.gouv.fr", phishing, 12, false),
            porteur_decision("monavis", "https://avis.example", phishing, 12, true),
            high_volume("monavis", "https://avis.example", phishing, 12),
        ] {
            assert!(!mail.subject.contains("evil") && !mail.body.contains("evil"), "{}\n{}", mail.subject, mail.body);
            assert!(mail.subject.contains("n°\u{a0}12"), "{}", mail.subject);
        }
        let ok = porteur_invite("monavis", "https://avis.example", "Marie Curie", "Carte grise", 12, "jeton");
        assert!(
            ok.subject.contains("« Carte grise » (n°\u{a0}12)") && ok.body.contains("Marie Curie"),
            "{}",
            ok.subject
        );
        let formula = porteur_invite("monavis", "https://avis.example", "=HYPERLINK(1)", "Carte grise", 12, "jeton");
        assert!(formula.body.starts_with("Bonjour,\n\nUn porteur vous invite"), "{}", formula.body);
    }
}
