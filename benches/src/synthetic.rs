//! Synthetic avis for the benchmarks, as citizens write them: shared by consolebench (the
//! console over millions of avis) and flushbench (the flush into a month already holding
//! millions), so both feed PostgreSQL's full-text index the same varied comments.

/// ~40 sentences as citizens write them; four speak of an « agent » (the frequent search word), one of the
/// « mairie ».
pub const SENTENCES: [&str; 40] = [
    "Démarche rapide et claire, merci.",
    "Très simple, j'ai terminé en cinq minutes.",
    "Le formulaire est bien expliqué.",
    "Je n'ai pas trouvé où joindre mon justificatif de domicile.",
    "L'agent au téléphone a été très aimable et m'a aidé à finir.",
    "Impossible de me connecter avec FranceConnect, j'ai dû recommencer.",
    "Le site a planté deux fois avant la validation.",
    "Les délais de traitement sont beaucoup trop longs.",
    "Un agent de la mairie m'a accompagné, sans lui je n'y serais pas arrivé.",
    "Pas assez d'informations sur les pièces à fournir.",
    "Le vocabulaire administratif est difficile à comprendre.",
    "Parfait, rien à redire.",
    "J'ai attendu plus d'une heure au guichet.",
    "Le téléchargement des documents ne fonctionne pas sur mobile.",
    "Merci pour cette démarche en ligne, c'est un vrai gain de temps.",
    "Je ne sais pas si mon dossier a bien été reçu.",
    "L'accueil à la préfecture était chaleureux.",
    "Il faudrait pouvoir enregistrer le brouillon et reprendre plus tard.",
    "Les agents ne répondent pas aux courriels.",
    "Trop de questions qui se répètent d'une page à l'autre.",
    "Le récapitulatif à la fin est très utile.",
    "J'ai reçu l'accusé de réception immédiatement.",
    "La taille maximale des fichiers est trop petite.",
    "Je me suis perdu entre les différentes étapes.",
    "Très bonne expérience, je recommande.",
    "Le numéro d'assistance est toujours occupé.",
    "Difficile pour une personne âgée sans aide.",
    "Ma fille a dû remplir le formulaire à ma place.",
    "Clair, simple, efficace.",
    "La page de paiement affiche une erreur mais le paiement est passé.",
    "Je n'ai pas compris pourquoi ma demande a été refusée.",
    "L'agent d'accueil m'a expliqué chaque étape avec patience.",
    "Les horaires d'ouverture ne sont pas indiqués.",
    "Enfin une démarche qui fonctionne du premier coup !",
    "Le code reçu par SMS arrive trop tard et expire.",
    "Il manque une aide pour les personnes étrangères.",
    "Je suis passé par une association, c'était plus simple.",
    "Le message d'erreur n'explique pas ce qui ne va pas.",
    "Bonne démarche, mais l'adresse électronique n'est pas acceptée avec des accents.",
    "Rien à signaler, c'était rapide.",
];

/// Added to about one comment in 10,000: « récépissé » is in no other sentence (the rare word
/// of the searches), « introuvable » in none at all (the absent one).
pub const RARE_SENTENCE: &str = "Le récépissé imprimé est illisible.";

/// Small fast generator (xorshift64*), deterministic per seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        (((self.next_u64() >> 11) as u128 * n as u128) >> 53) as u64
    }
    /// One of `items`, by cumulative percent weights.
    pub fn pick<T: Copy>(&mut self, weighted: &[(u64, T)]) -> T {
        let total: u64 = weighted.iter().map(|w| w.0).sum();
        let mut x = self.below(total);
        for &(w, v) in weighted {
            if x < w {
                return v;
            }
            x -= w;
        }
        weighted[weighted.len() - 1].1
    }
}

/// A comment, or none: one avis in five has one, of one sentence or (three times in ten) two,
/// and about one comment in 10,000 also holds [`RARE_SENTENCE`].
pub fn comment(rng: &mut Rng) -> Option<String> {
    (rng.below(5) == 0).then(|| {
        let first = SENTENCES[rng.below(SENTENCES.len() as u64) as usize];
        let mut text = if rng.below(10) < 3 {
            format!("{first} {}", SENTENCES[rng.below(SENTENCES.len() as u64) as usize])
        } else {
            first.to_string()
        };
        if rng.below(10_000) == 0 {
            text.push(' ');
            text.push_str(RARE_SENTENCE);
        }
        text
    })
}
