//! Every text of the citizens' pages, in every language of the form (DESIGN §17), in one place so
//! that it is reviewed as a whole: the questions are the observatory's, so each language must say
//! what the French says, in short sentences for people who are not specialists.
//!
//! `docs/FORM_LANGUAGES.md` shows this table side by side; a test keeps it in step
//! (`MONAVIS_WRITE_DOCS=1 cargo test -p widget-server --lib form_text` rewrites it).
//!
//! Placeholders: `{name}` (the démarche's name, which stays as its porteurs wrote it), `{n}` (a
//! count), `{months}` (`--retention-months`), `{*}` (the red asterisk of required fields).
//! Strings hold no markup: the pages escape them. French uses non-breaking spaces before `: ; ? !`
//! and inside « », as the French pages always did.

use snippet::Lang;

/// A page that tells a citizen something went wrong: its title and paragraphs.
#[derive(Debug)]
pub struct Problem {
    pub title: &'static str,
    pub paragraphs: &'static [&'static str],
}

macro_rules! texts {
    ($($(#[doc = $doc:literal])* $name:ident : $ty:ty,)*) => {
        /// The texts of one language.
        #[derive(Debug)]
        pub struct Texts {
            $($(#[doc = $doc])* pub $name: $ty,)*
        }

        impl Texts {
            /// Every text with its name, in declaration order (for the review table and tests).
            pub fn entries(&self) -> Vec<(&'static str, Vec<&'static str>)> {
                vec![$((stringify!($name), Entry::parts(&self.$name)),)*]
            }
        }
    };
}

trait Entry {
    fn parts(&self) -> Vec<&'static str>;
}

impl Entry for &'static str {
    fn parts(&self) -> Vec<&'static str> {
        vec![*self]
    }
}

impl<const N: usize> Entry for [&'static str; N] {
    fn parts(&self) -> Vec<&'static str> {
        self.to_vec()
    }
}

impl Entry for Problem {
    fn parts(&self) -> Vec<&'static str> {
        std::iter::once(self.title).chain(self.paragraphs.iter().copied()).collect()
    }
}

texts! {
    /// The service's name, under the operator's in the header.
    site: &'static str,
    /// The skip link.
    skip: &'static str,
    /// The footer.
    footer: &'static str,
    /// The name of the row of language links (read by screen readers).
    languages: &'static str,
    /// The form's heading (`{name}`).
    heading: &'static str,
    /// Put before the title of a form sent back with errors.
    error_prefix: &'static str,
    /// The heading of the error summary.
    summary_title: &'static str,
    /// The note on required fields (`{*}`).
    required: &'static str,
    /// The questions (DESIGN §4), in the form's order.
    q_satisfaction: &'static str,
    q_facilite: &'static str,
    q_clarte: &'static str,
    q_aide: &'static str,
    aide_hint: &'static str,
    q_commentaire: &'static str,
    commentaire_hint: &'static str,
    /// The answers, in the order of the stored values (DESIGN §4).
    satisfaction: [&'static str; 3],
    facilite: [&'static str; 3],
    clarte: [&'static str; 3],
    aide: [&'static str; 6],
    /// The submit button.
    submit: &'static str,
    /// The label of the honeypot field (hidden from people).
    honeypot: &'static str,
    /// How the error summary names each question: satisfaction, facilité, clarté, aide, commentaire.
    fields: [&'static str; 5],
    /// The messages tied to a field.
    err_missing: &'static str,
    err_one_only: &'static str,
    err_not_offered: &'static str,
    err_aide_not_offered: &'static str,
    err_comment_twice: &'static str,
    /// `{n}`: the number of characters sent.
    err_comment_too_long: &'static str,
    err_unreadable: &'static str,
    /// The privacy notice's fixed text (DESIGN §13); the controller and DPO stay as written.
    privacy_title: &'static str,
    privacy_controller: &'static str,
    privacy_dpo: &'static str,
    /// `{months}`.
    privacy_text: &'static str,
    /// The thank-you page.
    merci_title_short: &'static str,
    merci_title: &'static str,
    /// `{name}`.
    merci_saved: &'static str,
    merci_close: &'static str,
    /// The pages of refusals and unknown addresses.
    cross_site: Problem,
    invalid_link: Problem,
    not_yet_open: Problem,
    unsupported: Problem,
    too_large: Problem,
    timeout: Problem,
    rate_limited: Problem,
    overloaded: Problem,
    not_found: Problem,
}

/// The texts of `lang`.
pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Fr => &FR,
        Lang::En => &EN,
        Lang::Es => &ES,
        Lang::De => &DE,
        Lang::Pt => &PT,
        Lang::Ar => &AR,
        Lang::Uk => &UK,
    }
}

/// The separator between a name and what follows (French puts a non-breaking space before `:`).
pub fn colon(lang: Lang) -> &'static str {
    if lang == Lang::Fr {
        "\u{a0}: "
    } else {
        ": "
    }
}

/// `template` with `{key}` replaced by `value`.
pub fn fill(template: &str, key: &str, value: &str) -> String {
    template.replace(key, value)
}

/// `template` split around `{key}`: what goes before and after (the whole template before when
/// the key is missing), so a page can put markup in between.
pub fn split<'a>(template: &'a str, key: &str) -> (&'a str, &'a str) {
    template.split_once(key).unwrap_or((template, ""))
}

pub const FR: Texts = Texts {
    site: "Je donne mon avis",
    skip: "Aller au contenu",
    footer: "Vos réponses sont anonymes\u{a0}: elles servent à améliorer cette démarche.",
    languages: "Langue du formulaire",
    heading: "Votre avis sur la démarche «\u{a0}{name}\u{a0}»",
    error_prefix: "Erreur",
    summary_title: "Votre avis n'a pas pu être envoyé",
    required: "Les champs marqués d'un astérisque ({*}) sont obligatoires.",
    q_satisfaction: "De façon générale, comment s'est passée cette démarche\u{a0}?",
    q_facilite: "La démarche était-elle facile\u{a0}?",
    q_clarte: "Le langage employé était-il clair\u{a0}?",
    q_aide: "Avez-vous eu besoin d'aide\u{a0}?",
    aide_hint: "Plusieurs réponses possibles.",
    q_commentaire: "Souhaitez-vous nous en dire plus\u{a0}?",
    commentaire_hint: "Ne donnez aucune information personnelle (nom, adresse, numéro de dossier…). 2\u{a0}000 caractères au maximum.",
    satisfaction: ["Très bien", "Moyen", "Pas bien"],
    facilite: ["Facile", "Ni facile ni difficile", "Difficile"],
    clarte: ["Clair", "Moyennement clair", "Pas clair"],
    aide: [
        "Je n'ai pas eu besoin d'aide",
        "Un proche",
        "Une association",
        "Un agent (guichet, téléphone, e-mail)",
        "Internet",
        "Autre",
    ],
    submit: "Envoyer mon avis",
    honeypot: "Ne pas remplir ce champ",
    fields: ["Votre avis général", "Facilité de la démarche", "Clarté du langage", "Aide reçue", "Commentaire"],
    err_missing: "Indiquez comment s'est passée la démarche.",
    err_one_only: "Choisissez une seule réponse.",
    err_not_offered: "Choisissez une des réponses proposées.",
    err_aide_not_offered: "Choisissez parmi les réponses proposées.",
    err_comment_twice: "Le commentaire a été envoyé deux fois.",
    err_comment_too_long: "Votre commentaire compte {n} caractères\u{a0}: raccourcissez-le à 2\u{a0}000 caractères au maximum.",
    err_unreadable: "Le texte reçu contient des caractères illisibles\u{a0}: vérifiez votre commentaire et envoyez-le à nouveau.",
    privacy_title: "Vos données",
    privacy_controller: "Responsable du traitement\u{a0}: ",
    privacy_dpo: "Délégué à la protection des données\u{a0}: ",
    privacy_text: "Ni nom, ni adresse IP, ni cookie ne sont enregistrés. Adresses e-mail, numéros de téléphone, de sécurité sociale et IBAN écrits dans le commentaire en sont retirés. Les commentaires sont effacés après {months}\u{a0}mois.",
    merci_title_short: "Merci",
    merci_title: "Merci pour votre avis\u{a0}!",
    merci_saved: "Votre avis sur la démarche «\u{a0}{name}\u{a0}» a bien été enregistré.",
    merci_close: "Il aide l'administration à simplifier ses démarches. Vous pouvez maintenant fermer cette page.",
    cross_site: Problem {
        title: "Votre avis n'a pas été enregistré",
        paragraphs: &[
            "Un avis se donne depuis le formulaire du service, et cet envoi venait d'un autre site.",
            "Revenez à la page de la démarche et cliquez sur le bouton «\u{a0}Je donne mon avis\u{a0}»\u{a0}: le formulaire s'ouvrira et vous pourrez donner votre avis.",
        ],
    },
    invalid_link: Problem {
        title: "Ce lien d'avis n'est pas valide",
        paragraphs: &[
            "Le lien que vous avez suivi est incomplet ou a été modifié.",
            "Revenez à la page de la démarche et cliquez à nouveau sur le bouton «\u{a0}Je donne mon avis\u{a0}».",
        ],
    },
    not_yet_open: Problem {
        title: "Ce formulaire n'est pas encore ouvert",
        paragraphs: &[
            "Le formulaire d'avis de cette démarche attend la validation des administrateurs du service.",
            "Revenez plus tard\u{a0}: vous pourrez alors donner votre avis.",
        ],
    },
    unsupported: Problem {
        title: "Envoi non reconnu",
        paragraphs: &["Votre avis doit être envoyé depuis le formulaire. Revenez au formulaire et envoyez-le à nouveau."],
    },
    too_large: Problem {
        title: "Votre avis est trop long",
        paragraphs: &["Le formulaire reçu dépasse la taille autorisée. Raccourcissez votre commentaire et envoyez-le à nouveau."],
    },
    timeout: Problem {
        title: "Envoi interrompu",
        paragraphs: &["Votre avis n'est pas arrivé en entier. Vérifiez votre connexion et envoyez-le à nouveau."],
    },
    rate_limited: Problem {
        title: "Trop d'avis envoyés",
        paragraphs: &[
            "Plusieurs avis ont été envoyés depuis votre connexion en peu de temps.",
            "Patientez une minute avant d'envoyer à nouveau votre avis.",
        ],
    },
    overloaded: Problem {
        title: "Service momentanément surchargé",
        paragraphs: &[
            "Nous recevons beaucoup d'avis en ce moment et le vôtre n'a pas pu être enregistré.",
            "Envoyez-le à nouveau dans quelques secondes\u{a0}: vos réponses sont encore dans le formulaire.",
        ],
    },
    not_found: Problem { title: "Page introuvable", paragraphs: &["Cette adresse ne correspond à aucune page."] },
};

const EN: Texts = Texts {
    site: "Give your opinion",
    skip: "Skip to content",
    footer: "Your answers are anonymous. They are used to improve this procedure.",
    languages: "Language of the form",
    heading: "Your opinion on the procedure “{name}”",
    error_prefix: "Error",
    summary_title: "Your opinion could not be sent",
    required: "Fields marked with an asterisk ({*}) are required.",
    q_satisfaction: "Overall, how did this procedure go?",
    q_facilite: "Was the procedure easy?",
    q_clarte: "Was the language clear?",
    q_aide: "Did you need help?",
    aide_hint: "You can choose more than one answer.",
    q_commentaire: "Do you want to tell us more?",
    commentaire_hint: "Do not give any personal information (name, address, file number…). 2,000 characters at most.",
    satisfaction: ["Very well", "Average", "Not well"],
    facilite: ["Easy", "Neither easy nor difficult", "Difficult"],
    clarte: ["Clear", "Fairly clear", "Not clear"],
    aide: [
        "I did not need help",
        "A relative or a friend",
        "An association",
        "A staff member (counter, phone, e-mail)",
        "The internet",
        "Other",
    ],
    submit: "Send my opinion",
    honeypot: "Do not fill in this field",
    fields: ["Your overall opinion", "Ease of the procedure", "Clarity of the language", "Help received", "Comment"],
    err_missing: "Tell us how the procedure went.",
    err_one_only: "Choose only one answer.",
    err_not_offered: "Choose one of the answers given.",
    err_aide_not_offered: "Choose among the answers given.",
    err_comment_twice: "The comment was sent twice.",
    err_comment_too_long: "Your comment has {n} characters. Make it 2,000 characters at most.",
    err_unreadable: "The text we received has characters that cannot be read. Check your comment and send it again.",
    privacy_title: "Your data",
    privacy_controller: "Data controller: ",
    privacy_dpo: "Data protection officer: ",
    privacy_text: "No name, IP address or cookie is recorded. E-mail addresses, phone numbers, social security numbers and IBANs written in the comment are removed from it. Comments are deleted after {months} months.",
    merci_title_short: "Thank you",
    merci_title: "Thank you for your opinion!",
    merci_saved: "Your opinion on the procedure “{name}” has been recorded.",
    merci_close: "It helps the administration make its procedures simpler. You can now close this page.",
    cross_site: Problem {
        title: "Your opinion was not recorded",
        paragraphs: &[
            "An opinion is given from the service's form, and this one was sent from another website.",
            "Go back to the procedure's page and click the “Je donne mon avis” button: the form will open and you can give your opinion.",
        ],
    },
    invalid_link: Problem {
        title: "This link is not valid",
        paragraphs: &[
            "The link you followed is incomplete or has been changed.",
            "Go back to the procedure's page and click the “Je donne mon avis” button again.",
        ],
    },
    not_yet_open: Problem {
        title: "This form is not open yet",
        paragraphs: &[
            "The opinion form of this procedure is waiting for approval by the service's administrators.",
            "Come back later: you will then be able to give your opinion.",
        ],
    },
    unsupported: Problem {
        title: "Sending not recognised",
        paragraphs: &["Your opinion must be sent from the form. Go back to the form and send it again."],
    },
    too_large: Problem {
        title: "Your opinion is too long",
        paragraphs: &["The form we received is larger than allowed. Shorten your comment and send it again."],
    },
    timeout: Problem {
        title: "Sending interrupted",
        paragraphs: &["Your opinion did not arrive in full. Check your connection and send it again."],
    },
    rate_limited: Problem {
        title: "Too many opinions sent",
        paragraphs: &[
            "Several opinions were sent from your connection in a short time.",
            "Wait one minute before you send your opinion again.",
        ],
    },
    overloaded: Problem {
        title: "Service busy for the moment",
        paragraphs: &[
            "We are receiving many opinions right now and yours could not be recorded.",
            "Send it again in a few seconds: your answers are still in the form.",
        ],
    },
    not_found: Problem { title: "Page not found", paragraphs: &["This address does not match any page."] },
};

const ES: Texts = Texts {
    site: "Doy mi opinión",
    skip: "Ir al contenido",
    footer: "Sus respuestas son anónimas. Sirven para mejorar este trámite.",
    languages: "Idioma del formulario",
    heading: "Su opinión sobre el trámite «{name}»",
    error_prefix: "Error",
    summary_title: "No se pudo enviar su opinión",
    required: "Los campos marcados con un asterisco ({*}) son obligatorios.",
    q_satisfaction: "En general, ¿cómo le fue con este trámite?",
    q_facilite: "¿Fue fácil el trámite?",
    q_clarte: "¿Era claro el lenguaje utilizado?",
    q_aide: "¿Necesitó ayuda?",
    aide_hint: "Puede elegir varias respuestas.",
    q_commentaire: "¿Quiere contarnos algo más?",
    commentaire_hint: "No dé ningún dato personal (nombre, dirección, número de expediente…). 2000 caracteres como máximo.",
    satisfaction: ["Muy bien", "Regular", "Mal"],
    facilite: ["Fácil", "Ni fácil ni difícil", "Difícil"],
    clarte: ["Claro", "Más o menos claro", "Poco claro"],
    aide: [
        "No necesité ayuda",
        "Un familiar o un amigo",
        "Una asociación",
        "Un empleado (ventanilla, teléfono, correo electrónico)",
        "Internet",
        "Otra",
    ],
    submit: "Enviar mi opinión",
    honeypot: "No rellene este campo",
    fields: ["Su opinión general", "Facilidad del trámite", "Claridad del lenguaje", "Ayuda recibida", "Comentario"],
    err_missing: "Indique cómo le fue con el trámite.",
    err_one_only: "Elija una sola respuesta.",
    err_not_offered: "Elija una de las respuestas propuestas.",
    err_aide_not_offered: "Elija entre las respuestas propuestas.",
    err_comment_twice: "El comentario se envió dos veces.",
    err_comment_too_long: "Su comentario tiene {n} caracteres. Acórtelo a 2000 caracteres como máximo.",
    err_unreadable: "El texto recibido tiene caracteres que no se pueden leer. Revise su comentario y envíelo de nuevo.",
    privacy_title: "Sus datos",
    privacy_controller: "Responsable del tratamiento: ",
    privacy_dpo: "Delegado de protección de datos: ",
    privacy_text: "No se registra ningún nombre, dirección IP ni cookie. Las direcciones de correo electrónico y los números de teléfono, de seguridad social e IBAN escritos en el comentario se eliminan. Los comentarios se borran al cabo de {months} meses.",
    merci_title_short: "Gracias",
    merci_title: "¡Gracias por su opinión!",
    merci_saved: "Su opinión sobre el trámite «{name}» se ha registrado.",
    merci_close: "Ayuda a la administración a simplificar sus trámites. Ya puede cerrar esta página.",
    cross_site: Problem {
        title: "Su opinión no se ha registrado",
        paragraphs: &[
            "La opinión se da desde el formulario del servicio, y este envío venía de otro sitio web.",
            "Vuelva a la página del trámite y haga clic en el botón «Je donne mon avis»: se abrirá el formulario y podrá dar su opinión.",
        ],
    },
    invalid_link: Problem {
        title: "Este enlace no es válido",
        paragraphs: &[
            "El enlace que ha seguido está incompleto o ha sido modificado.",
            "Vuelva a la página del trámite y haga clic de nuevo en el botón «Je donne mon avis».",
        ],
    },
    not_yet_open: Problem {
        title: "Este formulario aún no está abierto",
        paragraphs: &[
            "El formulario de opinión de este trámite espera la validación de los administradores del servicio.",
            "Vuelva más tarde: entonces podrá dar su opinión.",
        ],
    },
    unsupported: Problem {
        title: "Envío no reconocido",
        paragraphs: &["Su opinión debe enviarse desde el formulario. Vuelva al formulario y envíela de nuevo."],
    },
    too_large: Problem {
        title: "Su opinión es demasiado larga",
        paragraphs: &["El formulario recibido supera el tamaño permitido. Acorte su comentario y envíelo de nuevo."],
    },
    timeout: Problem {
        title: "Envío interrumpido",
        paragraphs: &["Su opinión no ha llegado completa. Compruebe su conexión y envíela de nuevo."],
    },
    rate_limited: Problem {
        title: "Demasiadas opiniones enviadas",
        paragraphs: &[
            "Se han enviado varias opiniones desde su conexión en poco tiempo.",
            "Espere un minuto antes de enviar de nuevo su opinión.",
        ],
    },
    overloaded: Problem {
        title: "Servicio saturado por el momento",
        paragraphs: &[
            "Estamos recibiendo muchas opiniones en este momento y la suya no se ha podido registrar.",
            "Envíela de nuevo dentro de unos segundos: sus respuestas siguen en el formulario.",
        ],
    },
    not_found: Problem { title: "Página no encontrada", paragraphs: &["Esta dirección no corresponde a ninguna página."] },
};

const DE: Texts = Texts {
    site: "Meine Meinung",
    skip: "Zum Inhalt springen",
    footer: "Ihre Antworten sind anonym. Sie helfen, dieses Verfahren zu verbessern.",
    languages: "Sprache des Formulars",
    heading: "Ihre Meinung zum Verfahren „{name}“",
    error_prefix: "Fehler",
    summary_title: "Ihre Meinung konnte nicht gesendet werden",
    required: "Felder mit einem Sternchen ({*}) müssen ausgefüllt werden.",
    q_satisfaction: "Wie ist dieses Verfahren insgesamt für Sie gelaufen?",
    q_facilite: "War das Verfahren einfach?",
    q_clarte: "War die Sprache verständlich?",
    q_aide: "Haben Sie Hilfe gebraucht?",
    aide_hint: "Sie können mehrere Antworten wählen.",
    q_commentaire: "Möchten Sie uns mehr sagen?",
    commentaire_hint: "Geben Sie keine persönlichen Daten an (Name, Adresse, Aktenzeichen …). Höchstens 2.000 Zeichen.",
    satisfaction: ["Sehr gut", "Mittelmäßig", "Nicht gut"],
    facilite: ["Einfach", "Weder einfach noch schwierig", "Schwierig"],
    clarte: ["Verständlich", "Einigermaßen verständlich", "Nicht verständlich"],
    aide: [
        "Ich habe keine Hilfe gebraucht",
        "Eine Person aus Familie oder Freundeskreis",
        "Ein Verein",
        "Ein Mitarbeiter der Verwaltung (Schalter, Telefon, E-Mail)",
        "Das Internet",
        "Andere",
    ],
    submit: "Meine Meinung senden",
    honeypot: "Dieses Feld nicht ausfüllen",
    fields: ["Ihre allgemeine Meinung", "Einfachheit des Verfahrens", "Verständlichkeit der Sprache", "Erhaltene Hilfe", "Kommentar"],
    err_missing: "Geben Sie an, wie das Verfahren gelaufen ist.",
    err_one_only: "Wählen Sie nur eine Antwort.",
    err_not_offered: "Wählen Sie eine der angebotenen Antworten.",
    err_aide_not_offered: "Wählen Sie unter den angebotenen Antworten.",
    err_comment_twice: "Der Kommentar wurde zweimal gesendet.",
    err_comment_too_long: "Ihr Kommentar hat {n} Zeichen. Kürzen Sie ihn auf höchstens 2.000 Zeichen.",
    err_unreadable: "Der empfangene Text enthält Zeichen, die nicht lesbar sind. Prüfen Sie Ihren Kommentar und senden Sie ihn noch einmal.",
    privacy_title: "Ihre Daten",
    privacy_controller: "Verantwortlich für die Verarbeitung: ",
    privacy_dpo: "Datenschutzbeauftragte oder Datenschutzbeauftragter: ",
    privacy_text: "Weder Name noch IP-Adresse noch Cookie werden gespeichert. E-Mail-Adressen, Telefon- und Sozialversicherungsnummern und IBAN im Kommentar werden daraus entfernt. Kommentare werden nach {months} Monaten gelöscht.",
    merci_title_short: "Vielen Dank",
    merci_title: "Vielen Dank für Ihre Meinung!",
    merci_saved: "Ihre Meinung zum Verfahren „{name}“ wurde gespeichert.",
    merci_close: "Sie hilft der Verwaltung, ihre Verfahren einfacher zu machen. Sie können diese Seite jetzt schließen.",
    cross_site: Problem {
        title: "Ihre Meinung wurde nicht gespeichert",
        paragraphs: &[
            "Eine Meinung wird über das Formular des Dienstes abgegeben, und diese Sendung kam von einer anderen Website.",
            "Gehen Sie zurück zur Seite des Verfahrens und klicken Sie auf die Schaltfläche „Je donne mon avis“: Das Formular öffnet sich, und Sie können Ihre Meinung abgeben.",
        ],
    },
    invalid_link: Problem {
        title: "Dieser Link ist nicht gültig",
        paragraphs: &[
            "Der Link, dem Sie gefolgt sind, ist unvollständig oder wurde verändert.",
            "Gehen Sie zurück zur Seite des Verfahrens und klicken Sie noch einmal auf die Schaltfläche „Je donne mon avis“.",
        ],
    },
    not_yet_open: Problem {
        title: "Dieses Formular ist noch nicht geöffnet",
        paragraphs: &[
            "Das Formular dieses Verfahrens wartet auf die Freigabe durch die Verwaltung des Dienstes.",
            "Kommen Sie später wieder: Dann können Sie Ihre Meinung abgeben.",
        ],
    },
    unsupported: Problem {
        title: "Sendung nicht erkannt",
        paragraphs: &["Ihre Meinung muss über das Formular gesendet werden. Gehen Sie zurück zum Formular und senden Sie sie noch einmal."],
    },
    too_large: Problem {
        title: "Ihre Meinung ist zu lang",
        paragraphs: &["Das empfangene Formular ist größer als erlaubt. Kürzen Sie Ihren Kommentar und senden Sie ihn noch einmal."],
    },
    timeout: Problem {
        title: "Sendung unterbrochen",
        paragraphs: &["Ihre Meinung ist nicht vollständig angekommen. Prüfen Sie Ihre Verbindung und senden Sie sie noch einmal."],
    },
    rate_limited: Problem {
        title: "Zu viele Meinungen gesendet",
        paragraphs: &[
            "Von Ihrer Verbindung wurden in kurzer Zeit mehrere Meinungen gesendet.",
            "Warten Sie eine Minute, bevor Sie Ihre Meinung noch einmal senden.",
        ],
    },
    overloaded: Problem {
        title: "Dienst im Moment überlastet",
        paragraphs: &[
            "Wir erhalten gerade sehr viele Meinungen, und Ihre konnte nicht gespeichert werden.",
            "Senden Sie sie in einigen Sekunden noch einmal: Ihre Antworten sind noch im Formular.",
        ],
    },
    not_found: Problem { title: "Seite nicht gefunden", paragraphs: &["Zu dieser Adresse gibt es keine Seite."] },
};

const PT: Texts = Texts {
    site: "Dou a minha opinião",
    skip: "Ir para o conteúdo",
    footer: "As suas respostas são anónimas. Servem para melhorar este procedimento.",
    languages: "Língua do formulário",
    heading: "A sua opinião sobre o procedimento «{name}»",
    error_prefix: "Erro",
    summary_title: "Não foi possível enviar a sua opinião",
    required: "Os campos marcados com um asterisco ({*}) são obrigatórios.",
    q_satisfaction: "De forma geral, como correu este procedimento?",
    q_facilite: "O procedimento foi fácil?",
    q_clarte: "A linguagem utilizada era clara?",
    q_aide: "Precisou de ajuda?",
    aide_hint: "Pode escolher várias respostas.",
    q_commentaire: "Quer dizer-nos mais alguma coisa?",
    commentaire_hint: "Não indique nenhuma informação pessoal (nome, morada, número de processo…). 2000 caracteres no máximo.",
    satisfaction: ["Muito bem", "Razoável", "Mal"],
    facilite: ["Fácil", "Nem fácil nem difícil", "Difícil"],
    clarte: ["Clara", "Mais ou menos clara", "Pouco clara"],
    aide: [
        "Não precisei de ajuda",
        "Um familiar ou um amigo",
        "Uma associação",
        "Um funcionário (balcão, telefone, e-mail)",
        "Internet",
        "Outra",
    ],
    submit: "Enviar a minha opinião",
    honeypot: "Não preencha este campo",
    fields: ["A sua opinião geral", "Facilidade do procedimento", "Clareza da linguagem", "Ajuda recebida", "Comentário"],
    err_missing: "Indique como correu o procedimento.",
    err_one_only: "Escolha só uma resposta.",
    err_not_offered: "Escolha uma das respostas propostas.",
    err_aide_not_offered: "Escolha entre as respostas propostas.",
    err_comment_twice: "O comentário foi enviado duas vezes.",
    err_comment_too_long: "O seu comentário tem {n} caracteres. Reduza-o a 2000 caracteres no máximo.",
    err_unreadable: "O texto recebido tem caracteres que não se conseguem ler. Verifique o seu comentário e envie-o novamente.",
    privacy_title: "Os seus dados",
    privacy_controller: "Responsável pelo tratamento: ",
    privacy_dpo: "Encarregado da proteção de dados: ",
    privacy_text: "Não é registado nenhum nome, endereço IP ou cookie. Os endereços de e-mail e os números de telefone, de segurança social e IBAN escritos no comentário são retirados. Os comentários são apagados ao fim de {months} meses.",
    merci_title_short: "Obrigado",
    merci_title: "Obrigado pela sua opinião!",
    merci_saved: "A sua opinião sobre o procedimento «{name}» foi registada.",
    merci_close: "Ajuda a administração a simplificar os seus procedimentos. Já pode fechar esta página.",
    cross_site: Problem {
        title: "A sua opinião não foi registada",
        paragraphs: &[
            "Uma opinião dá-se a partir do formulário do serviço, e este envio veio de outro sítio web.",
            "Volte à página do procedimento e clique no botão «Je donne mon avis»: o formulário abre-se e pode dar a sua opinião.",
        ],
    },
    invalid_link: Problem {
        title: "Esta ligação não é válida",
        paragraphs: &[
            "A ligação que seguiu está incompleta ou foi alterada.",
            "Volte à página do procedimento e clique novamente no botão «Je donne mon avis».",
        ],
    },
    not_yet_open: Problem {
        title: "Este formulário ainda não está aberto",
        paragraphs: &[
            "O formulário de opinião deste procedimento aguarda a validação dos administradores do serviço.",
            "Volte mais tarde: poderá então dar a sua opinião.",
        ],
    },
    unsupported: Problem {
        title: "Envio não reconhecido",
        paragraphs: &["A sua opinião deve ser enviada a partir do formulário. Volte ao formulário e envie-a novamente."],
    },
    too_large: Problem {
        title: "A sua opinião é demasiado longa",
        paragraphs: &["O formulário recebido ultrapassa o tamanho permitido. Reduza o seu comentário e envie-o novamente."],
    },
    timeout: Problem {
        title: "Envio interrompido",
        paragraphs: &["A sua opinião não chegou completa. Verifique a sua ligação e envie-a novamente."],
    },
    rate_limited: Problem {
        title: "Demasiadas opiniões enviadas",
        paragraphs: &[
            "Foram enviadas várias opiniões a partir da sua ligação em pouco tempo.",
            "Aguarde um minuto antes de enviar novamente a sua opinião.",
        ],
    },
    overloaded: Problem {
        title: "Serviço sobrecarregado de momento",
        paragraphs: &[
            "Estamos a receber muitas opiniões neste momento e não foi possível registar a sua.",
            "Envie-a novamente dentro de alguns segundos: as suas respostas continuam no formulário.",
        ],
    },
    not_found: Problem { title: "Página não encontrada", paragraphs: &["Este endereço não corresponde a nenhuma página."] },
};

const AR: Texts = Texts {
    site: "أعطي رأيي",
    skip: "الانتقال إلى المحتوى",
    footer: "إجاباتك لا تحمل اسمك، وتُستخدم لتحسين هذا الإجراء.",
    languages: "لغة الاستمارة",
    heading: "رأيك في الإجراء «{name}»",
    error_prefix: "خطأ",
    summary_title: "تعذّر إرسال رأيك",
    required: "الحقول التي عليها علامة النجمة ({*}) إلزامية.",
    q_satisfaction: "بشكل عام، كيف جرى هذا الإجراء؟",
    q_facilite: "هل كان الإجراء سهلاً؟",
    q_clarte: "هل كانت اللغة المستخدمة واضحة؟",
    q_aide: "هل احتجت إلى مساعدة؟",
    aide_hint: "يمكنك اختيار أكثر من إجابة.",
    q_commentaire: "هل تريد أن تخبرنا بالمزيد؟",
    commentaire_hint: "لا تكتب أي معلومات شخصية (الاسم، العنوان، رقم الملف…). 2000 حرف على الأكثر.",
    satisfaction: ["جيد جداً", "متوسط", "ليس جيداً"],
    facilite: ["سهل", "لا سهل ولا صعب", "صعب"],
    clarte: ["واضحة", "واضحة إلى حد ما", "غير واضحة"],
    aide: [
        "لم أحتج إلى مساعدة",
        "أحد الأقارب أو الأصدقاء",
        "جمعية",
        "موظف (شباك، هاتف، بريد إلكتروني)",
        "الإنترنت",
        "غير ذلك",
    ],
    submit: "إرسال رأيي",
    honeypot: "لا تملأ هذا الحقل",
    fields: ["رأيك العام", "سهولة الإجراء", "وضوح اللغة", "المساعدة التي تلقيتها", "التعليق"],
    err_missing: "أخبرنا كيف جرى الإجراء.",
    err_one_only: "اختر إجابة واحدة فقط.",
    err_not_offered: "اختر إحدى الإجابات المقترحة.",
    err_aide_not_offered: "اختر من بين الإجابات المقترحة.",
    err_comment_twice: "أُرسل التعليق مرتين.",
    err_comment_too_long: "في تعليقك {n} حرف. اختصره إلى 2000 حرف على الأكثر.",
    err_unreadable: "في النص الذي وصلنا حروف لا يمكن قراءتها. تحقق من تعليقك وأرسله مرة أخرى.",
    privacy_title: "بياناتك",
    privacy_controller: "المسؤول عن معالجة البيانات: ",
    privacy_dpo: "مسؤول حماية البيانات: ",
    privacy_text: "لا يُسجَّل أي اسم ولا عنوان IP ولا ملف تعريف ارتباط (cookie). تُحذف من التعليق عناوين البريد الإلكتروني وأرقام الهاتف والضمان الاجتماعي والحساب المصرفي (IBAN). تُمحى التعليقات بعد {months} شهراً.",
    merci_title_short: "شكراً",
    merci_title: "شكراً على رأيك!",
    merci_saved: "تم تسجيل رأيك في الإجراء «{name}».",
    merci_close: "رأيك يساعد الإدارة على تبسيط إجراءاتها. يمكنك الآن إغلاق هذه الصفحة.",
    cross_site: Problem {
        title: "لم يُسجَّل رأيك",
        paragraphs: &[
            "يُعطى الرأي من استمارة الخدمة، وهذا الإرسال جاء من موقع آخر.",
            "ارجع إلى صفحة الإجراء وانقر على زر «Je donne mon avis»: ستُفتح الاستمارة ويمكنك إعطاء رأيك.",
        ],
    },
    invalid_link: Problem {
        title: "هذا الرابط غير صالح",
        paragraphs: &[
            "الرابط الذي اتبعته ناقص أو تم تغييره.",
            "ارجع إلى صفحة الإجراء وانقر مرة أخرى على زر «Je donne mon avis».",
        ],
    },
    not_yet_open: Problem {
        title: "هذه الاستمارة غير مفتوحة بعد",
        paragraphs: &[
            "استمارة الرأي الخاصة بهذا الإجراء تنتظر موافقة المسؤولين عن الخدمة.",
            "عد لاحقاً: ستتمكن حينها من إعطاء رأيك.",
        ],
    },
    unsupported: Problem {
        title: "إرسال غير معروف",
        paragraphs: &["يجب إرسال رأيك من الاستمارة. ارجع إلى الاستمارة وأرسله مرة أخرى."],
    },
    too_large: Problem {
        title: "رأيك طويل جداً",
        paragraphs: &["الاستمارة التي وصلتنا أكبر من الحجم المسموح به. اختصر تعليقك وأرسله مرة أخرى."],
    },
    timeout: Problem {
        title: "انقطع الإرسال",
        paragraphs: &["لم يصل رأيك كاملاً. تحقق من اتصالك وأرسله مرة أخرى."],
    },
    rate_limited: Problem {
        title: "أُرسلت آراء كثيرة",
        paragraphs: &["أُرسلت عدة آراء من اتصالك في وقت قصير.", "انتظر دقيقة قبل أن ترسل رأيك مرة أخرى."],
    },
    overloaded: Problem {
        title: "الخدمة مزدحمة في هذه اللحظة",
        paragraphs: &[
            "نتلقى الكثير من الآراء الآن، ولم نتمكن من تسجيل رأيك.",
            "أرسله مرة أخرى بعد بضع ثوانٍ: إجاباتك ما زالت في الاستمارة.",
        ],
    },
    not_found: Problem { title: "الصفحة غير موجودة", paragraphs: &["هذا العنوان لا يطابق أي صفحة."] },
};

const UK: Texts = Texts {
    site: "Мій відгук",
    skip: "Перейти до змісту",
    footer: "Ваші відповіді анонімні. Вони допомагають покращити цю процедуру.",
    languages: "Мова форми",
    heading: "Ваш відгук про процедуру «{name}»",
    error_prefix: "Помилка",
    summary_title: "Не вдалося надіслати ваш відгук",
    required: "Поля, позначені зірочкою ({*}), обов'язкові.",
    q_satisfaction: "Загалом, як пройшла ця процедура?",
    q_facilite: "Чи була процедура простою?",
    q_clarte: "Чи була мова зрозумілою?",
    q_aide: "Чи потрібна вам була допомога?",
    aide_hint: "Можна вибрати кілька відповідей.",
    q_commentaire: "Бажаєте розповісти нам більше?",
    commentaire_hint: "Не пишіть особистих даних (ім'я, адреса, номер справи…). До 2000 символів.",
    satisfaction: ["Дуже добре", "Посередньо", "Погано"],
    facilite: ["Просто", "Ні просто, ні складно", "Складно"],
    clarte: ["Зрозуміло", "Частково зрозуміло", "Незрозуміло"],
    aide: [
        "Мені не потрібна була допомога",
        "Родич або друг",
        "Громадська організація",
        "Працівник установи (віконце, телефон, e-mail)",
        "Інтернет",
        "Інше",
    ],
    submit: "Надіслати відгук",
    honeypot: "Не заповнюйте це поле",
    fields: ["Ваша загальна оцінка", "Простота процедури", "Зрозумілість мови", "Отримана допомога", "Коментар"],
    err_missing: "Вкажіть, як пройшла процедура.",
    err_one_only: "Виберіть лише одну відповідь.",
    err_not_offered: "Виберіть одну із запропонованих відповідей.",
    err_aide_not_offered: "Виберіть серед запропонованих відповідей.",
    err_comment_twice: "Коментар надіслано двічі.",
    err_comment_too_long: "У вашому коментарі {n} символів. Скоротіть його до 2000 символів.",
    err_unreadable: "Отриманий текст містить символи, які неможливо прочитати. Перевірте коментар і надішліть його ще раз.",
    privacy_title: "Ваші дані",
    privacy_controller: "Відповідальний за обробку даних: ",
    privacy_dpo: "Уповноважений із захисту даних: ",
    privacy_text: "Ім'я, IP-адреса та cookie не зберігаються. Адреси e-mail, номери телефонів, соцстрахування та IBAN з коментаря видаляються. Коментарі стираються через {months} міс.",
    merci_title_short: "Дякуємо",
    merci_title: "Дякуємо за ваш відгук!",
    merci_saved: "Ваш відгук про процедуру «{name}» збережено.",
    merci_close: "Він допомагає адміністрації спрощувати процедури. Тепер ви можете закрити цю сторінку.",
    cross_site: Problem {
        title: "Ваш відгук не збережено",
        paragraphs: &[
            "Відгук надсилають із форми сервісу, а це надсилання прийшло з іншого сайту.",
            "Поверніться на сторінку процедури та натисніть кнопку «Je donne mon avis»: відкриється форма, і ви зможете залишити відгук.",
        ],
    },
    invalid_link: Problem {
        title: "Це посилання недійсне",
        paragraphs: &[
            "Посилання, за яким ви перейшли, неповне або змінене.",
            "Поверніться на сторінку процедури та знову натисніть кнопку «Je donne mon avis».",
        ],
    },
    not_yet_open: Problem {
        title: "Ця форма ще не відкрита",
        paragraphs: &[
            "Форма відгуків цієї процедури чекає на схвалення адміністраторів сервісу.",
            "Поверніться пізніше: тоді ви зможете залишити відгук.",
        ],
    },
    unsupported: Problem {
        title: "Надсилання не розпізнано",
        paragraphs: &["Відгук потрібно надіслати з форми. Поверніться до форми та надішліть його ще раз."],
    },
    too_large: Problem {
        title: "Ваш відгук задовгий",
        paragraphs: &["Отримана форма більша, ніж дозволено. Скоротіть коментар і надішліть його ще раз."],
    },
    timeout: Problem {
        title: "Надсилання перервано",
        paragraphs: &["Ваш відгук надійшов не повністю. Перевірте з'єднання та надішліть його ще раз."],
    },
    rate_limited: Problem {
        title: "Надіслано забагато відгуків",
        paragraphs: &[
            "З вашого з'єднання за короткий час надіслано кілька відгуків.",
            "Зачекайте хвилину, перш ніж надіслати відгук ще раз.",
        ],
    },
    overloaded: Problem {
        title: "Сервіс зараз перевантажений",
        paragraphs: &[
            "Зараз ми отримуємо дуже багато відгуків, і ваш не вдалося зберегти.",
            "Надішліть його ще раз за кілька секунд: ваші відповіді залишилися у формі.",
        ],
    },
    not_found: Problem { title: "Сторінку не знайдено", paragraphs: &["Ця адреса не відповідає жодній сторінці."] },
};

/// The review table: one row per text, one column per language (`docs/FORM_LANGUAGES.md`).
pub fn review_table() -> String {
    let mut out = String::from(
        "# The avis form in every language\n\n\
         Generated from `widget-server/src/form_text.rs` by its tests \
         (`MONAVIS_WRITE_DOCS=1 cargo test -p widget-server --lib form_text`): every text citizens \
         read, side by side, to review a language as a whole against the French. The questions and \
         answers are the observatory's (DESIGN §4): a translation must keep their meaning. The \
         stored values do not depend on the language.\n\n",
    );
    out.push_str("| text |");
    for l in Lang::ALL {
        out.push_str(&format!(" {} ({}) |", l.native_name(), l.code()));
    }
    out.push_str("\n|---|");
    for _ in Lang::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    let per_lang: Vec<Vec<(&str, Vec<&str>)>> = Lang::ALL.iter().map(|l| texts(*l).entries()).collect();
    for (row, (name, parts)) in per_lang[0].iter().enumerate() {
        for part in 0..parts.len() {
            let label = if parts.len() > 1 { format!("{name} {}", part + 1) } else { name.to_string() };
            out.push_str(&format!("| `{label}` |"));
            for lang in &per_lang {
                let cell = lang[row].1.get(part).copied().unwrap_or("");
                out.push_str(&format!(" {} |", cell.replace('\u{a0}', " ").replace('|', "\\|")));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The placeholders each text must keep in every language.
    fn placeholders(s: &str) -> Vec<&'static str> {
        ["{name}", "{n}", "{months}", "{*}"].into_iter().filter(|p| s.contains(p)).collect()
    }

    #[test]
    fn every_language_says_every_text_with_its_placeholders() {
        let french = texts(Lang::Fr).entries();
        for lang in Lang::ALL {
            let entries = texts(lang).entries();
            assert_eq!(entries.len(), french.len());
            for ((name, parts), (_, fr_parts)) in entries.iter().zip(&french) {
                assert_eq!(parts.len(), fr_parts.len(), "{lang:?} {name}: as many paragraphs as the French");
                for (text, fr) in parts.iter().zip(fr_parts) {
                    assert!(!text.trim().is_empty(), "{lang:?} {name} is empty");
                    assert_eq!(placeholders(text), placeholders(fr), "{lang:?} {name}: {text}");
                    assert!(
                        !text.contains(['<', '>', '{']) || !placeholders(text).is_empty(),
                        "{lang:?} {name}: markup"
                    );
                    // « Internet » is the word in Spanish and Portuguese too.
                    if lang != Lang::Fr && *text != "Internet" {
                        assert_ne!(*text, *fr, "{lang:?} {name} is still French")
                    }
                }
            }
        }
    }

    #[test]
    fn split_and_fill() {
        assert_eq!(split("a {*} b", "{*}"), ("a ", " b"));
        assert_eq!(split("no key", "{*}"), ("no key", ""));
        assert_eq!(fill("{n} chars", "{n}", "12"), "12 chars");
    }

    #[test]
    fn review_table_is_in_step() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/FORM_LANGUAGES.md");
        let table = review_table();
        if std::env::var_os("MONAVIS_WRITE_DOCS").is_some() {
            std::fs::write(path, &table).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == table,
            "docs/FORM_LANGUAGES.md is not in step with form_text.rs: run MONAVIS_WRITE_DOCS=1 cargo test -p widget-server --lib form_text"
        );
    }
}
