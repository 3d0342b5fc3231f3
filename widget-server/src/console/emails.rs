//! The French e-mails of the console, plain text. Links are absolute, built on `--public-url`.

use super::mail::Email;

fn sign(operator: &str) -> String {
    format!("\n\n-- \nL'équipe {operator}\nCe message est envoyé automatiquement, merci de ne pas y répondre.\n")
}

/// After sign-up: the single-use confirmation link (24 h).
pub fn confirm(operator: &str, public_url: &str, token: &str) -> Email {
    Email {
        subject: format!("Confirmez votre adresse e-mail – {operator}"),
        body: format!(
            "Bonjour,\n\nVous avez créé un compte porteur sur {operator}. Pour confirmer votre adresse e-mail, \
             ouvrez ce lien (valable 24 heures, utilisable une seule fois) :\n\n{public_url}/confirmation?jeton={token}\n\n\
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
            "Bonjour,\n\nQuelqu'un (peut-être vous) a demandé à créer un compte avec cette adresse, \
             mais elle a déjà un compte.\n\nPour vous connecter : {public_url}/connexion\n\
             Mot de passe oublié : {public_url}/mot-de-passe-oublie\n\n\
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

/// The password changed (by reset or from « Mon compte »).
pub fn password_changed(operator: &str, public_url: &str) -> Email {
    Email {
        subject: format!("Votre mot de passe a été changé – {operator}"),
        body: format!(
            "Bonjour,\n\nLe mot de passe de votre compte vient d'être changé, et toutes vos autres sessions \
             ont été fermées.\n\nSi vous n'êtes pas à l'origine de ce changement, choisissez tout de suite \
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

/// To each porteur of a démarche: someone asks to carry it too.
pub fn porteur_request(operator: &str, public_url: &str, name: &str, email: &str, demarche: &str, id: i64) -> Email {
    Email {
        subject: format!("Demande pour porter « {demarche} » – {operator}"),
        body: format!(
            "Bonjour,\n\n{name} ({email}) demande à devenir porteur de la démarche « {demarche} », que vous portez.\n\n\
             Pour accepter ou refuser : {public_url}/console/demarches/{id}/porteurs{}",
            sign(operator)
        ),
    }
}

/// To the requester: the request went to the démarche's porteurs.
pub fn porteur_request_sent(operator: &str, demarche: &str) -> Email {
    Email {
        subject: format!("Votre demande pour porter « {demarche} » – {operator}"),
        body: format!(
            "Bonjour,\n\nVotre demande pour devenir porteur de la démarche « {demarche} » a été transmise à ses \
             porteurs. Vous recevrez un e-mail dès que l'un d'eux, ou un administrateur, y aura répondu.{}",
            sign(operator)
        ),
    }
}

/// To the requester: accepted or refused.
pub fn porteur_decision(operator: &str, public_url: &str, demarche: &str, id: i64, accepted: bool) -> Email {
    let (subject, text) = if accepted {
        (
            "acceptée",
            format!(
                "Vous êtes maintenant porteur de la démarche « {demarche} » : {public_url}/console/demarches/{id}/code"
            ),
        )
    } else {
        ("refusée", format!("Votre demande pour devenir porteur de la démarche « {demarche} » a été refusée."))
    };
    Email {
        subject: format!("Demande {subject} pour « {demarche} » – {operator}"),
        body: format!("Bonjour,\n\n{text}{}", sign(operator)),
    }
}

/// An invitation to carry a démarche (single-use link, 7 days).
pub fn porteur_invite(operator: &str, public_url: &str, inviter: &str, demarche: &str, token: &str) -> Email {
    Email {
        subject: format!("Invitation à porter « {demarche} » – {operator}"),
        body: format!(
            "Bonjour,\n\n{inviter} vous invite à devenir porteur de la démarche « {demarche} » sur {operator}.\n\n\
             Pour accepter, connectez-vous avec cette adresse (ou créez d'abord un compte : {public_url}/inscription), \
             puis ouvrez ce lien (valable 7 jours, utilisable une seule fois) :\n\n\
             {public_url}/console/invitation?jeton={token}{}",
            sign(operator)
        ),
    }
}

/// To each administrator: a démarche declares over 5,000,000 a year.
pub fn high_volume(operator: &str, public_url: &str, demarche: &str, id: i64) -> Email {
    Email {
        subject: format!("Démarche à fort volume à valider : « {demarche} » – {operator}"),
        body: format!(
            "Bonjour,\n\nLa démarche « {demarche} » (n° {id}) déclare plus de 5 000 000 d'usagers par an. \
             Son bouton reste fermé jusqu'à votre validation : {public_url}/console/admin#fort-volume{}",
            sign(operator)
        ),
    }
}
